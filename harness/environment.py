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


#: /proc/cpuinfo flags that decide which float32 kernels the frameworks pick, most capable first.
_ISA_FLAGS = (("amx_tile", "AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2"))
#: Environment variables that hold a framework below the CPU's instruction sets (docs/parity.md).
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def cpu_isa() -> str | None:
    """The most capable of AMX, AVX-512, AVX2, AVX, SSE4.2 the CPU has (x86-64 Linux; None elsewhere)."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return None
    return next((name for flag, name in _ISA_FLAGS if flag in flags), None)


def isa_caps() -> dict:
    """The instruction-set caps set in the environment (XLA's flag and the variables above), by name."""
    found = {name: os.environ[name] for name in ISA_CAP_VARIABLES if os.environ.get(name)}
    xla = [f for f in os.environ.get("XLA_FLAGS", "").split() if f.startswith("--xla_cpu_max_isa=")]
    return ({"xla_cpu_max_isa": xla[-1].split("=", 1)[1]} if xla else {}) | found


def cpu_label() -> str:
    """The CPU as every figure names it: ``AMD EPYC (AVX2)``, with the caps when the frameworks were held below."""
    isa, caps = cpu_isa(), isa_caps()
    held = f"; held to {', '.join(f'{k}={v}' for k, v in caps.items())}" if caps else ""
    return f"{cpu_name()} ({isa or 'instruction sets unknown'}{held})"


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
        "cpu_isa": cpu_isa(),
        "isa_caps": isa_caps(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_commit": git_commit(),
    }


def data_environment(data) -> dict:
    """``data`` is a ``harness.data.MNIST``."""
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
