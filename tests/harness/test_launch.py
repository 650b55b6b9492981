"""Worker processes under PyTorch's elastic launcher: torchrun's environment, each worker's share of the
machine, one clear line for a failure or a signal, and no worker that outlives its launcher."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from cli_helpers import REPO

from harness.launch import LaunchError, choose_port, cpu_shares, run_workers

pytestmark = pytest.mark.e2e  # worker processes under the launcher (cpu_shares aside)


def _run(code: str, processes: int, **kwargs):
    lines = []
    status = run_workers(["-c", code], processes, port=choose_port(), say=lines.append, **kwargs)
    return status, lines


def test_workers_get_torchruns_environment_and_their_share_of_the_cores(tmp_path):
    code = ("import json, os, pathlib; from harness.launch import setup_worker; setup_worker(); "
            "r = os.environ['RANK']; pathlib.Path(os.environ['OUT'], r).write_text(json.dumps("
            "{k: os.environ[k] for k in ('WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'OMP_NUM_THREADS')}"
            " | {'cores': sorted(os.sched_getaffinity(0))}))")
    status, lines = _run(code, 2, env={"OUT": str(tmp_path), "PYTHONPATH": str(REPO)}, pin=True)
    assert status == 0, lines
    seen = [json.loads((tmp_path / str(r)).read_text()) for r in range(2)]
    assert [s["LOCAL_RANK"] for s in seen] == ["0", "1"] and {s["WORLD_SIZE"] for s in seen} == {"2"}
    assert seen[0]["MASTER_PORT"] == seen[1]["MASTER_PORT"] and seen[0]["MASTER_ADDR"] == "127.0.0.1"
    if len(cpu_shares(1)[0]) >= 2:  # cores divided, none shared
        assert not set(seen[0]["cores"]) & set(seen[1]["cores"])
        assert seen[0]["OMP_NUM_THREADS"] == str(len(seen[0]["cores"]))
    assert "starting 2 workers under PyTorch's elastic launcher" in lines[0]


def test_a_failing_worker_is_named_and_its_status_returned():
    status, lines = _run("import os, sys, time; r = int(os.environ['RANK']); time.sleep(0 if r else 60); "
                         "sys.exit(3 if r else 0)", 2)
    assert status == 3
    assert "worker 1 of 2" in lines[-1] and "exited with status 3" in lines[-1]


def test_a_killed_worker_stops_the_others_at_once():
    t0 = time.monotonic()
    status, lines = _run("import os, signal, time; r = int(os.environ['RANK']); time.sleep(0.5); "
                         "os.kill(os.getpid(), signal.SIGKILL) if r == 1 else time.sleep(120)", 2)
    assert status == 1
    assert "worker 1 of 2" in lines[-1] and "killed by SIGKILL" in lines[-1]
    assert time.monotonic() - t0 < 30  # the sleeping worker 0 was stopped, not waited for


def test_a_port_in_use_is_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        for port in (taken, taken - 1):  # PORT itself, or PORT + 1 (JAX's coordinator)
            with pytest.raises(LaunchError, match="already in use"):
                choose_port(port)
    free = choose_port()
    assert 1024 <= free < 65535


def test_cpu_shares_are_disjoint_and_equal():
    shares = cpu_shares(2)
    assert len(shares) == 2 and len(shares[0]) == len(shares[1])
    if len(cpu_shares(1)[0]) >= 2:
        assert not set(shares[0]) & set(shares[1])


def _launcher(worker: str) -> subprocess.Popen:
    code = (f"import sys; from harness.launch import choose_port, run_workers; "
            f"sys.exit(run_workers(['-c', {worker!r}], 2, port=choose_port(), outcome=lambda: 'nothing written'))")
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stderr=subprocess.PIPE, text=True)


def test_an_interrupted_launch_stops_its_workers_and_says_what_they_left():
    proc = _launcher("import time; time.sleep(60)")
    assert "starting 2 workers" in proc.stderr.readline()
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert "interrupted by SIGINT: the launcher stopped the workers; nothing written" in err


def test_no_worker_outlives_its_launcher(tmp_path):
    """The launcher killed with SIGKILL (which it cannot answer): its workers end with it, instead of training on
    in a folder whose lock died with it."""
    worker = (f"import os, pathlib, time; from harness.launch import setup_worker; setup_worker(); "
              f"pathlib.Path({str(tmp_path)!r}, os.environ['RANK']).write_text(str(os.getpid())); time.sleep(120)")
    proc = _launcher(worker)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = [int(p.read_text()) for p in tmp_path.iterdir()]
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30  # (however slowly a loaded machine delivers their ending)
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"workers {alive} outlived their launcher"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped by its new parent, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
