"""Start N local worker processes of one command, as torchrun does, and answer for them as one.

``launch(command, 3)`` runs ``command`` three times with torchrun's environment
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``;
``mnist_common.processes`` reads it for both frameworks), shares this
machine's CPU cores out among the workers (``OMP_NUM_THREADS``, which sizes
PyTorch's thread pools; XLA sizes its own from the cores a process may run on,
so only ``pin``, which binds each worker to its share, divides them for JAX) or
gives each its own GPU, and waits. Worker 0 speaks:
its output is this command's; the others' standard output is dropped, their
errors still show. When a worker fails or dies the others are stopped at once
and the launch fails with a line naming it; SIGINT or SIGTERM stops them all.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

#: Seconds a stopped worker gets to exit after SIGTERM before it is killed.
GRACE_S = 10.0
#: Seconds the other workers get when one has failed (their work is lost either way).
FAILED_GRACE_S = 2.0
_POLL_S = 0.1


class LaunchError(Exception):
    """Workers that cannot be started as asked (a port in use, too few GPUs): one line, exit 2."""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_port(port: int | None = None) -> int:
    """``port`` checked free with the one above it (JAX's coordinator), or a free pair the system offers."""
    if port is not None:
        if not 1024 <= port <= 65534:
            raise LaunchError(f"--port must be in [1024, 65534], got {port}")
        for p in (port, port + 1):
            if not _port_free(p):
                raise LaunchError(f"--port {port}: port {p} is already in use on this machine (process 0 listens on "
                                  "PORT and PORT + 1): choose another --port, or leave it out to get a free one")
        return port
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            candidate = s.getsockname()[1]
        if candidate < 65535 and _port_free(candidate) and _port_free(candidate + 1):
            return candidate
    raise LaunchError("found no two free ports next to each other; give --port")


def visible_gpus() -> list[str]:
    """The NVIDIA GPUs this process may use (``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``), as their ids."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def cpu_shares(processes: int) -> list[list[int]]:
    """This process's CPU cores cut into ``processes`` equal, disjoint shares (all of them each when fewer cores)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    per = len(cores) // processes
    if per == 0:
        return [cores] * processes
    return [cores[i * per:(i + 1) * per] for i in range(processes)]


#: Set for each worker: the launcher's pid, so that the worker ends with it (:func:`end_with_launcher`).
LAUNCHER = "BENCHMARKS_LAUNCHER_PID"


def end_with_launcher() -> None:
    """In a worker that a launcher started: ask the kernel for SIGTERM when the launcher dies (Linux's
    ``PR_SET_PDEATHSIG``), so that no worker trains on, unwatched, in a folder whose lock died with its launcher;
    if the launcher is gone already, end now. Elsewhere, and in a process no launcher started, nothing."""
    launcher = os.environ.get(LAUNCHER)
    if not launcher or not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if str(os.getppid()) != launcher:
        os.kill(os.getpid(), signal.SIGTERM)


def _describe(rank: int, processes: int, pid: int, code: int) -> str:
    what = (f"was killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals()
            else f"exited with status {code}")
    return f"worker {rank} of {processes} (pid {pid}) {what}"


def launch(command: Sequence[str], processes: int, *, port: int | None = None, use_gpus: bool = False,
           pin: bool = False, env: dict | None = None, say=None, outcome=None) -> int:
    """Run ``command`` as ``processes`` workers on this machine; their exit status as one.

    ``use_gpus``: one GPU per worker (a LaunchError when there are fewer); else
    CPU cores are shared out: ``OMP_NUM_THREADS`` is each worker's share, and
    with ``pin`` each is bound to its own cores. Not by default: bound to one
    core each, JAX's gloo all-reduce waited on its own compute threads, and a
    2-process ViT step took 420 ms against 150-210 ms unbound (PyTorch DDP
    gained a little from binding; docs/performance.md). ``say`` prints the launcher's own lines (default:
    stderr); ``outcome()``, when given, says what the workers left behind when the launch was interrupted
    (the runner: how many runs results.json holds). Returns 0 when every worker succeeded, else the failing worker's
    status (1 for one killed by a signal), or 128 + the signal that stopped the
    launch.
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    if processes < 1:
        raise LaunchError(f"--processes must be at least 1, got {processes}")
    port = choose_port(port)
    gpus = visible_gpus() if use_gpus else []
    if use_gpus and len(gpus) < processes:
        raise LaunchError(f"--processes {processes}: one GPU per process, and {len(gpus)} are visible")
    shares = cpu_shares(processes)
    base = dict(os.environ if env is None else env)
    workers = []
    stop = {"signum": None}

    def on_signal(signum, frame):
        stop["signum"] = signum

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for rank in range(processes):
            worker_env = base | {
                LAUNCHER: str(os.getpid()),
                "WORLD_SIZE": str(processes), "RANK": str(rank), "LOCAL_RANK": str(rank),
                "LOCAL_WORLD_SIZE": str(processes), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            }
            if gpus:
                worker_env["CUDA_VISIBLE_DEVICES"] = gpus[rank]
            else:
                worker_env["OMP_NUM_THREADS"] = str(len(shares[rank]))
            workers.append(subprocess.Popen(
                list(command), env=worker_env, start_new_session=True,  # Ctrl-C reaches the launcher, which stops all
                stdout=None if rank == 0 else subprocess.DEVNULL,
            ))
            if pin and not gpus and hasattr(os, "sched_setaffinity"):
                # pinned as it starts, long before it imports a framework and sizes its thread pools (a
                # preexec_fn would need a fork of this process, which a loaded JAX warns against)
                os.sched_setaffinity(workers[-1].pid, shares[rank])
        where = "one GPU each" if gpus else f"{len(shares[0])} CPU core(s) each{'' if pin else ' in threads'}"
        say(f"started {processes} workers ({where}; pids {', '.join(str(w.pid) for w in workers)}; "
            f"process 0 listens on 127.0.0.1:{port})")
        while True:
            codes = [w.poll() for w in workers]
            failed = next((r for r, c in enumerate(codes) if c not in (None, 0)), None)
            if failed is not None:  # said first, before the other workers' own errors as they are stopped
                say(f"error: {_describe(failed, processes, workers[failed].pid, codes[failed])}; stopping the other "
                    "workers, and no run in progress was reported as finished")
                _stop(workers, FAILED_GRACE_S)
                return codes[failed] if codes[failed] > 0 else 1
            if all(c == 0 for c in codes):
                return 0
            if stop["signum"] is not None:
                done = [c == 0 for c in codes]  # finished before the signal reached them
                _stop(workers)
                name = signal.Signals(stop["signum"]).name
                left = f"; {outcome()}" if outcome is not None else ""
                say(f"interrupted by {name}: {_fates(workers, done)}{left}; finished runs and the last epoch "
                    "checkpoints are kept (continue with the same command and --resume)")
                return 128 + stop["signum"]
            time.sleep(_POLL_S)
    finally:
        _stop(workers)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _fates(workers: list[subprocess.Popen], done: list[bool]) -> str:
    """What each worker did when the launch was interrupted: finished before it, stopped by it, or failed."""
    parts = []
    for rank, (w, finished) in enumerate(zip(workers, done)):
        code = w.returncode
        if finished:
            what = "had already finished"
        elif code is not None and (code < 0 or code >= 128):
            signum = -code if code < 0 else code - 128
            what = f"stopped ({signal.Signals(signum).name})" if signum in signal.valid_signals() else "stopped"
        elif code == 0:
            what = "finished as it stopped"
        else:
            what = f"exited with status {code}"
        parts.append(f"worker {rank} {what}")
    return ", ".join(parts)


def _stop(workers: list[subprocess.Popen], grace: float = GRACE_S) -> None:
    """SIGTERM to every worker still running, SIGKILL to those still there after ``grace`` seconds (JAX's
    distributed runtime takes SIGTERM as a preemption notice and keeps going)."""
    running = [w for w in workers if w.poll() is None]
    for w in running:
        w.terminate()
    deadline = time.monotonic() + grace
    for w in running:
        try:
            w.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()
