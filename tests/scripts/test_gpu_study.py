"""scripts/gpu_study.sh: the time-boxed script for a lent GPU (its stages need a GPU; its plumbing does not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_study.sh"


def test_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, check=False).returncode == 0


def test_no_time_for_the_smoke_stage_stops_at_once_and_still_packs_the_log(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), "10"], cwd=SCRIPT.parents[1], capture_output=True, text=True,
                          env={"OUT": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHON": "false"},
                          timeout=60, check=False)
    assert proc.returncode == 1
    log = (tmp_path / "study" / "log.txt").read_text()
    assert "skip smoke: no time left" in log and "smoke run failed: stopping" in log
    with tarfile.open(tmp_path / "study.tar.gz") as tar:  # what comes back from the machine
        assert "study/log.txt" in tar.getnames()


@pytest.mark.slow  # about a minute: the smoke stage, then one stage at SMOKE=1 sizes
def test_a_stage_rehearsed_on_the_cpu_packs_its_results(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "SMOKE": "1"}
    proc = subprocess.run(["bash", str(SCRIPT), "300", "cnn-fast-loop"], cwd=SCRIPT.parents[1], capture_output=True,
                          text=True, env=env, timeout=400, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads((tmp_path / "study" / "cnn-fast-loop" / "results.json").read_text())["runs"]
    # 1024 images in batches of 512: the 117 steps per call asked for become the 2 an epoch has
    assert [r["seed"] for r in runs] == [0] and runs[0]["steps_per_call"] == 2
    with tarfile.open(tmp_path / "study.tar.gz") as tar:
        assert "study/cnn-fast-loop/results.json" in tar.getnames()
