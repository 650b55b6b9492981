"""Shared fixtures: the shipped MNIST, loaded once per session."""

from __future__ import annotations

import pytest

from jax_impl import xla_cpu

xla_cpu.apply()  # the XLA CPU flags the runner uses, before any test starts JAX


@pytest.fixture(scope="session")
def mnist():
    from harness.data import load_mnist

    return load_mnist()
