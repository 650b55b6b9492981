"""Shared fixtures (the shipped MNIST, loaded once per session), the ``e2e`` tier, and JAX's compilation cache.

A test that starts another Python process is marked ``e2e``: every command line run
end to end (``tests/benchmarks``, ``tests/scripts``, the installed package), the
import rules (a fresh interpreter per package), and the few elsewhere that start
worker processes or child interpreters. ``-m "not e2e"`` is the tier to run between
two edits: the library, in this process.

Most of a JAX test's time is XLA compiling; the suite keeps JAX's persistent
compilation cache (for itself and the commands it starts) in
``~/.cache/mnist-jax-torch/jax-tests``, so that a second run compiles only what an
edit changed. ``MNIST_TEST_JAX_CACHE=DIR`` puts it elsewhere, ``=off`` turns it off.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

JAX_CACHE = os.environ.get("MNIST_TEST_JAX_CACHE", str(Path.home() / ".cache" / "mnist-jax-torch" / "jax-tests"))
if JAX_CACHE != "off":  # before JAX starts: it reads these once; the commands the tests start inherit them
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", JAX_CACHE)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from jax_impl import xla_cpu  # noqa: E402 - after the cache settings

xla_cpu.apply()  # the XLA CPU flags the runner uses, before any test starts JAX

#: Test folders and files whose every test starts another Python process.
E2E = ("benchmarks", "scripts", "test_packaging.py", "test_import_isolation.py")


def pytest_collection_modifyitems(config, items):
    """Mark the ``e2e`` tier; leave ``slow`` tests out unless ``-m`` names them (``-m slow``, ``-m "slow and e2e"``),
    so that ``-m "not e2e"`` does not bring them in."""
    root = Path(__file__).parent
    for item in items:
        if Path(item.fspath).relative_to(root).parts[0] in E2E:
            item.add_marker(pytest.mark.e2e)
    if "slow" not in (config.option.markexpr or ""):
        slow = [item for item in items if item.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture(scope="session")
def mnist():
    from harness.data import load_mnist

    return load_mnist()
