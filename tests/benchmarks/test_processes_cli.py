"""``benchmarks.run --processes N``: one run over N worker processes, one voice, and clear failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import REPO, assert_one_line_error, cli_command, cli_env, run_cli

from harness.launch import choose_port


def test_two_processes_train_both_frameworks_report_as_one_run_and_resume_on_every_process(tmp_path):
    out = tmp_path / "out"
    command = ("--framework", "both", "--model", "cnn", "--preset", "smoke", "--processes", "2", "--no-progress",
               "--out", str(out))
    proc = run_cli(*command)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert [(r["framework"], r["processes"], r["devices"]) for r in results["runs"]] == [("jax", 2, 2),
                                                                                          ("torch", 2, 2)]
    assert results["environment"]["host"]["processes"] == 2
    assert all(r["batch_size"] == 128 and r["images_per_s"] > 0 for r in results["runs"])  # the global batch
    assert proc.stdout.count("| framework |") == 1  # process 0 speaks; the other trains in silence
    assert proc.stderr.count("[PyTorch] training cnn") == 1
    epochs = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [(e["framework"], e["epoch"]) for e in epochs] == [("jax", 1), ("jax", 2), ("torch", 1), ("torch", 2)]
    assert {p.name for p in (out / "models").iterdir()} == {"cnn-jax-seed0", "cnn-torch-seed0"}

    # As if killed during epoch 2: no finished run, the epoch-1 checkpoints left; every process restores them.
    (out / "results.json").unlink()
    shutil.rmtree(out / "checkpoints" / "cnn-jax-seed0" / "30")  # Orbax: one folder per step (15 per epoch)
    (out / "checkpoints" / "cnn-torch-seed0" / "checkpoint-000000030.pt").unlink()
    proc = run_cli(*command, "--resume")
    assert proc.returncode == 0, proc.stderr
    resumed = json.loads((out / "results.json").read_text())
    for before, after in zip(results["runs"], resumed["runs"]):
        assert after["processes"] == 2 and [h["epoch"] for h in after["history"]] == [1, 2]
        assert after["test_accuracy"] == before["test_accuracy"], after["framework"]
        assert after["train_loss"] == pytest.approx(before["train_loss"], abs=1e-6), after["framework"]


def _worker_of_rank(launcher: int, rank: int) -> int | None:
    """The pid of the launcher's worker process of ``rank`` (its child whose environment says so), from /proc."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == launcher \
                    and f"RANK={rank}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


def test_a_dead_worker_ends_the_run_with_a_line_naming_it(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(cli_command("--framework", "torch", "--model", "cnn", "--preset", "cpu", "--epochs", "3",
                                        "--processes", "2", "--no-progress", "--out", str(out)),
                            cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:  # until the workers train
        lines.append(line)
        if "training cnn" in line:
            break
    worker = _worker_of_rank(proc.pid, 1)
    assert worker, "".join(lines)
    time.sleep(1.0)
    killed = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    rest = proc.stderr.read()
    proc.wait(timeout=60)
    assert time.monotonic() - killed < 60
    assert proc.returncode != 0
    errors = [line for line in rest.splitlines() if line.startswith("error:")]
    assert errors and "worker 1 of 2" in errors[0] and "SIGKILL" in errors[0], rest  # the launcher's line first
    assert "Traceback" not in rest.split(errors[0])[0]
    assert json.loads((out / "results.json").read_text())["runs"] == []  # the run in progress: not finished


@pytest.mark.parametrize("args, needle", [
    (["--batch-size", "63"], "--batch-size 63 does not split over 2 processes"),
    (["--model", "vgg16", "--framework", "torch"], "vgg16 trains in one process only"),
    (["--processes", "0"], "--processes must be at least 1"),
    (["--processes", "1", "--port", "29500"], "--port applies to --processes N"),
    (["--processes", "1", "--pin-cores"], "--pin-cores applies to --processes N"),
    (["--test-only", "--model-dir", "x"], "does not apply to --test-only"),
    (["--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),  # the data checked before any worker starts
])
def test_settings_that_cannot_be_shared_exit_2_before_any_work(tmp_path, args, needle):
    out = tmp_path / "out"
    proc = run_cli("--model", "cnn", "--preset", "smoke", "--processes", "2", "--out", str(out), *args)
    assert_one_line_error(proc, needle)
    assert not out.exists()


def test_a_port_in_use_exits_2_and_leaves_no_folder(tmp_path):
    out = tmp_path / "out"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_cli("--model", "cnn", "--preset", "smoke", "--processes", "2", "--port", str(port),
                       "--out", str(out))
    assert_one_line_error(proc, f"port {port} is already in use")
    assert not out.exists()


def test_two_torchrun_nodes_on_one_machine_train_as_processes_2_does(tmp_path):
    """The command under torchrun itself, as on two hosts: two agents meeting at 127.0.0.1 (static rendezvous),
    one worker each, give the runs ``--processes 2`` gives."""
    command = ("--framework", "both", "--model", "cnn", "--preset", "smoke", "--epochs", "1", "--no-progress",
               "--checkpoint-every", "0")
    proc = run_cli(*command, "--processes", "2", "--out", str(tmp_path / "launched"))
    assert proc.returncode == 0, proc.stderr
    port, out = choose_port(), tmp_path / "nodes"
    nodes = [subprocess.Popen(cli_command("--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(rank),
                                          "--master-addr", "127.0.0.1", "--master-port", str(port),
                                          "-m", "benchmarks.run", *command, "--out", str(out),
                                          module="torch.distributed.run"),
                              cwd=REPO, env=cli_env({"OMP_NUM_THREADS": "1"}), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = [node.communicate(timeout=600) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], [err[-3000:] for _, err in outputs]
    launched, across_nodes = (json.loads((folder / "results.json").read_text())["runs"]
                              for folder in (tmp_path / "launched", out))
    assert [(r["framework"], r["processes"]) for r in across_nodes] == [("jax", 2), ("torch", 2)]
    for a, b in zip(launched, across_nodes):
        assert b["test_accuracy"] == a["test_accuracy"], a["framework"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-5), a["framework"]
