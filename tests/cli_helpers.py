"""Helpers for tests that run the CLI, or any code, in a fresh subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli_command(*args: str, module: str = "benchmarks.run") -> list[str]:
    return [sys.executable, "-m", module, *args]


def cli_env(env: dict | None = None) -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))


def run_cli(*args: str, module: str = "benchmarks.run", timeout: int = 300, env: dict | None = None,
            umask: int = 0o022, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m <module> args`` from ``cwd`` (the repository root) under ``umask``, output captured; ``env``
    adds variables. The umask is set by a shell (no ``preexec_fn``: forking this multithreaded process could
    deadlock)."""
    command = ["sh", "-c", f'umask {umask:03o} && exec "$@"', "sh", *cli_command(*args, module=module)]
    return subprocess.run(command, cwd=cwd, env=cli_env(env), capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, no traceback, and exactly one stderr line (ignoring library log noise) holding ``needles``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def run_python(code: str, env: dict | None = None, timeout: int = 120) -> dict:
    """Run ``code`` in a fresh interpreter from the repository root; the JSON its last stdout line prints."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
