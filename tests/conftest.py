"""Shared fixtures: the shipped MNIST, loaded once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mnist():
    from benchmarks.data import load_mnist

    return load_mnist()
