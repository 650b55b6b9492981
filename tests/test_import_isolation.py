"""What may import what: the framework packages are peers, the shared package and the harness library load no
framework, and the parity suite uses the harness library, never a command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import REPO

COMMANDS = ("benchmarks.run", "benchmarks.predict", "benchmarks.profile", "benchmarks.report", "benchmarks.photos")
CHECKS = {
    "mnist_common": ("import mnist_common, mnist_common.progress, mnist_common.architectures",
                     ("jax", "torch", "harness", "benchmarks", "jax_impl", "torch_ref")),
    "jax_impl": ("import jax_impl, jax_impl.models, jax_impl.train, jax_impl.kernels", ("torch", "harness",
                                                                                          "benchmarks")),
    "torch_ref": ("import torch_ref, torch_ref.models, torch_ref.train, torch_ref.finetune",
                  ("jax", "flax", "harness", "benchmarks")),
    "harness": ("import harness.settings, harness.backends, harness.experiment, harness.report.files",
                ("jax", "torch", "benchmarks")),
    "benchmarks": (f"import {', '.join(COMMANDS)}", ("jax", "torch")),
    "parity": ("import parity.run, parity.checks, parity.processes, parity.modes, parity.torchvision", COMMANDS),
}


@pytest.mark.parametrize("package", CHECKS)
def test_import_does_not_load(package):
    statement, forbidden = CHECKS[package]
    code = f"{statement}\nimport sys\nprint(','.join(m for m in {forbidden!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"importing {package} loaded {proc.stdout.strip()}"


def test_tensorboard_logs_load_no_framework(tmp_path):
    """tensorboardX would import PyTorch if it could: a JAX run's event files must not load it."""
    code = (f"from pathlib import Path\nfrom harness.tensorboard import RunBoard\n"
            f"board = RunBoard(Path({str(tmp_path)!r}), {{'model': 'cnn'}})\nboard.interval(1, 0.5, 1e-3)\n"
            "board.close()\nimport sys\nprint(','.join(m for m in ('torch', 'jax') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "" and list(tmp_path.glob("events.out.tfevents.*")), proc.stdout
