"""scripts/gpu_study.sh: the time-boxed script for a lent GPU (its stages need a GPU; its plumbing does not)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

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
