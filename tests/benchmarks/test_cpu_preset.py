"""The default run at the cpu preset reaches the study's accuracy in both frameworks (minutes: slow)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli


@pytest.mark.slow
def test_cpu_preset_reaches_99_percent_in_both_frameworks(tmp_path):
    proc = run_cli("--framework", "both", "--preset", "cpu", "--no-progress", "--out", str(tmp_path), timeout=1800)
    assert proc.returncode == 0, proc.stderr
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [r["framework"] for r in runs] == ["jax", "torch"]
    for run in runs:
        assert run["test_accuracy"] >= 0.99, (run["framework"], run["test_accuracy"])
        assert run["test_macro_f1"] >= 0.99
