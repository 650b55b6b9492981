"""The default run at the cpu preset reaches the study's accuracy in both frameworks, and reads photographed digits
about as well (minutes: slow)."""

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
    proc = run_cli(str(tmp_path / "models" / "cnn-jax-seed0"), "--count", "1000", "--sizes", "200",
                   module="benchmarks.photos", timeout=1800)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(" | ") for line in proc.stdout.splitlines() if line.startswith("| ") and "style" not in line]
    assert len(rows) == 6 and all(float(row[2].rstrip(" |")) >= 95 for row in rows), proc.stdout
