"""Several worker processes of one command, started and watched by PyTorch's elastic launcher.

``--processes N`` checks the whole plan, then hands N copies of the command to
``torch.distributed.launcher.api.elastic_launch`` (what ``torchrun`` runs): it
gives each worker torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``; ``mnist_common.processes`` reads it for both
frameworks), stops them all when one fails, and forwards SIGINT and SIGTERM. This
module adds what the project needs around it:

* each worker's share of the machine: ``OMP_NUM_THREADS`` (which sizes PyTorch's
  pools), and with ``--pin-cores`` its own cores (XLA sizes its pool from the cores
  a process may run on); on GPUs, one GPU each (:func:`setup_worker`, which each
  worker calls first, before a framework is imported);
* a worker that outlives its launcher: none (each asks to be ended with it);
* one voice: worker 0's output is the command's, the others' standard output is dropped
  (their errors still show), and a failure or a signal is one line naming the worker and what
  it did, or how many runs ``results.json`` holds.

The same command runs unchanged under ``torchrun --nnodes N`` on several hosts
(docs/runner.md): the workers read the same environment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence

from mnist_common.errors import UserError

#: Set for the workers: their launcher's choices (one GPU each, pinned cores), as JSON.
WORKER_SETUP = "BENCHMARKS_WORKER_SETUP"
#: Seconds a worker gets to end after SIGTERM when the launch stops, before SIGKILL.
GRACE_S = 10


class LaunchError(UserError):
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


def setup_worker() -> None:
    """What a worker does first, before it imports a framework: end with its launcher (Linux), and take the share
    its launcher gave it, its own GPU or its own cores, by its ``LOCAL_RANK``."""
    setup = json.loads(os.environ.get(WORKER_SETUP, "null"))
    if setup is None:
        return
    _end_with_parent(setup.get("launcher"))
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the launcher forwards Ctrl-C, and speaks for every worker
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    if setup.get("gpus"):
        os.environ["CUDA_VISIBLE_DEVICES"] = setup["gpus"][rank]
    elif setup.get("cores") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, setup["cores"][rank])


def _end_with_parent(launcher: int | None) -> None:
    """Ask the kernel for SIGTERM when the parent (the launcher, pid ``launcher``) dies, so that no worker trains on,
    unwatched, in a folder its launcher no longer holds (Linux's ``PR_SET_PDEATHSIG``; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if launcher is not None and os.getppid() != launcher:  # it died before the request was in place
            os.kill(os.getpid(), signal.SIGTERM)


def run_workers(command: Sequence[str], processes: int, *, port: int, use_gpus: bool = False, pin: bool = False,
                env: dict | None = None, say: Callable[[str], None] | None = None,
                outcome: Callable[[], str] | None = None) -> int:
    """Run ``command`` (a Python program's arguments: ``["-m", "benchmarks.run", ...]``) as ``processes`` workers on
    this machine under PyTorch's elastic launcher; their exit status as one.

    ``use_gpus``: one GPU per worker; else CPU cores are shared out (``OMP_NUM_THREADS``,
    and with ``pin`` each worker's own cores). Not pinned by default: bound to one core
    each, JAX's gloo all-reduce waited on its own compute threads (docs/performance.md).
    ``env``: variables added for the workers. ``say`` prints the launcher's own lines
    (default: stderr); ``outcome()`` says what the workers left when the launch was
    interrupted. Returns 0 when every worker succeeded, the failing worker's status (1
    for one killed by a signal), or 128 + the signal that stopped the launch.
    """
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    gpus = visible_gpus() if use_gpus else []
    if use_gpus and len(gpus) < processes:
        raise LaunchError(f"--processes {processes}: one GPU per process, and {len(gpus)} are visible")
    shares = cpu_shares(processes)
    setup = {"gpus": gpus[:processes]} if gpus else {"cores": shares if pin else None}
    setup["launcher"] = os.getpid()  # (the elastic agent runs in this process and starts the workers)
    added = (env or {}) | {WORKER_SETUP: json.dumps(setup)}
    if not gpus:
        added["OMP_NUM_THREADS"] = str(len(shares[0]))
    where = "one GPU each" if gpus else f"{len(shares[0])} CPU core(s) each{'' if pin else ' in threads'}"
    logs = tempfile.TemporaryDirectory(prefix="benchmarks-workers-")  # the other workers' stdout, dropped after
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=f"benchmarks-{os.getpid()}",
                          rdzv_backend="static", rdzv_endpoint=f"127.0.0.1:{port}", rdzv_configs={"rank": 0},
                          max_restarts=0, monitor_interval=0.1, shutdown_timeout=GRACE_S,
                          logs_specs=DefaultLogsSpecs(log_dir=logs.name,
                                                      redirects={r: Std.OUT for r in range(1, processes)}))
    say(f"starting {processes} workers under PyTorch's elastic launcher ({where}; process 0 listens on "
        f"127.0.0.1:{port})")
    saved = {k: os.environ.get(k) for k in added}
    os.environ.update(added)
    quiet = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
             if name.startswith("torch.distributed")]  # its own reports become the lines below
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        elastic_launch(config, sys.executable)(*command)
        return 0
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()  # (the others it stopped fail too, by its SIGTERM)
        what = (f"was killed by {signal.Signals(-failure.exitcode).name}"
                if failure.exitcode < 0 and -failure.exitcode in signal.valid_signals()
                else f"was killed by signal {-failure.exitcode}" if failure.exitcode < 0
                else f"exited with status {failure.exitcode}")
        say(f"error: worker {rank} of {processes} (pid {failure.pid}) {what}; the launcher stopped the other "
            "workers, and no run in progress was reported as finished")
        return failure.exitcode if failure.exitcode > 0 else 1
    except SignalException as err:
        left = f"; {outcome()}" if outcome is not None else ""
        say(f"interrupted by {signal.Signals(err.sigval).name}: the launcher stopped the workers{left}; finished "
            "runs and the last epoch checkpoints are kept (continue with the same command and --resume)")
        return 128 + err.sigval
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
        logs.cleanup()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
