"""The local launcher: workers with torchrun's environment, disjoint CPU cores, and one answer for all of them."""

from __future__ import annotations

import json
import os
import socket
import sys
import time

import pytest

from harness.launch import LaunchError, choose_port, cpu_shares, launch


def _run(code: str, processes: int, **kwargs):
    lines = []
    status = launch([sys.executable, "-c", code], processes, say=lines.append, **kwargs)
    return status, lines


def test_workers_get_their_rank_cores_and_address(tmp_path):
    code = ("import json, os, pathlib; r = os.environ['RANK']; pathlib.Path(os.environ['OUT'], r).write_text("
            "json.dumps({k: os.environ[k] for k in ('WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', "
            "'OMP_NUM_THREADS')} | {'cores': sorted(os.sched_getaffinity(0))}))")
    status, lines = _run(code, 2, env=dict(os.environ, OUT=str(tmp_path)), pin=True)
    assert status == 0
    seen = [json.loads((tmp_path / str(r)).read_text()) for r in range(2)]
    assert [s["LOCAL_RANK"] for s in seen] == ["0", "1"] and {s["WORLD_SIZE"] for s in seen} == {"2"}
    assert seen[0]["MASTER_PORT"] == seen[1]["MASTER_PORT"] and seen[0]["MASTER_ADDR"] == "127.0.0.1"
    if len(cpu_shares(1)[0]) >= 2:  # cores divided, none shared
        assert not set(seen[0]["cores"]) & set(seen[1]["cores"])
        assert seen[0]["OMP_NUM_THREADS"] == str(len(seen[0]["cores"]))
    assert "started 2 workers" in lines[0]


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


def test_an_interrupted_launch_says_what_each_worker_really_did():
    """Worker 0 has finished when SIGINT reaches the launcher; worker 1 is still running: the line says so, and
    the launch ends with 130."""
    import signal
    import subprocess

    from cli_helpers import REPO

    worker = "import os, time; time.sleep(0 if os.environ['RANK'] == '0' else 60)"
    code = (f"import sys; from harness.launch import launch; "
            f"sys.exit(launch([sys.executable, '-c', {worker!r}], 2, outcome=lambda: 'nothing written'))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stderr=subprocess.PIPE, text=True)
    assert "started 2 workers" in proc.stderr.readline()
    time.sleep(2.0)  # worker 0 is done by now
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert "interrupted by SIGINT: worker 0 had already finished, worker 1 stopped (SIGTERM); nothing written" in err
