"""The framework packages are peers: neither loads the other's framework or the harness."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli_helpers import REPO

CHECKS = {
    "jax_impl": ("import jax_impl, jax_impl.models, jax_impl.train", ("torch", "benchmarks")),
    "torch_ref": ("import torch_ref, torch_ref.models, torch_ref.train, torch_ref.finetune", ("jax", "flax", "benchmarks")),
    "benchmarks.run": ("import benchmarks.run", ("jax", "torch")),
}


@pytest.mark.parametrize("package", CHECKS)
def test_import_does_not_load(package):
    statement, forbidden = CHECKS[package]
    code = f"{statement}\nimport sys\nprint(','.join(m for m in {forbidden!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"importing {package} loaded {proc.stdout.strip()}"
