"""What a run ran on: host, libraries, device, data. Stored in every results.json."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """``$BENCH_GIT_COMMIT`` when set (a copy of the tree whose ``.git`` may not match it, as on a
    lent GPU machine: the caller knows what it sent); else HEAD, ``+dirty`` with uncommitted changes."""
    if os.environ.get("BENCH_GIT_COMMIT"):
        return os.environ["BENCH_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def host_environment() -> dict:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_commit": git_commit(),
    }


def data_environment(data) -> dict:
    """``data`` is a ``benchmarks.data.MNIST``."""
    location = Path(data.location).resolve() if data.source == "idx" else None
    if location is not None and location.is_relative_to(REPO_ROOT):
        location = location.relative_to(REPO_ROOT)  # reports stay valid in any checkout
    return {
        "source": data.source,
        "location": str(location) if location is not None else data.location,
        "train": int(len(data.train_labels)),
        "test": int(len(data.test_labels)),
        "checksums": data.checksums,
    }
