"""What a run ran on: host, libraries, device, data. Stored in every results.json."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: /proc/cpuinfo flags that decide which float32 kernels the frameworks pick, most capable first.
_ISA_FLAGS = (("amx_tile", "AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2"))
#: Environment variables that hold a framework below the CPU's instruction sets (docs/parity.md).
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def cpu_isa() -> str | None:
    """The most capable of AMX, AVX-512, AVX2, AVX, SSE4.2 the CPU has (x86-64 Linux; None elsewhere)."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return None
    return next((name for flag, name in _ISA_FLAGS if flag in flags), None)


def isa_caps() -> dict:
    """The instruction-set caps set in the environment (XLA's flag and the variables above), by name."""
    found = {name: os.environ[name] for name in ISA_CAP_VARIABLES if os.environ.get(name)}
    xla = [f for f in os.environ.get("XLA_FLAGS", "").split() if f.startswith("--xla_cpu_max_isa=")]
    return ({"xla_cpu_max_isa": xla[-1].split("=", 1)[1]} if xla else {}) | found


def cpu_label() -> str:
    """The CPU as every figure names it: ``AMD EPYC (AVX2)``, with the caps when the frameworks were held below."""
    isa, caps = cpu_isa(), isa_caps()
    held = f"; held to {', '.join(f'{k}={v}' for k, v in caps.items())}" if caps else ""
    return f"{cpu_name()} ({isa or 'instruction sets unknown'}{held})"


def git_commit() -> str | None:
    """``$BENCH_GIT_COMMIT`` when set (a copy of the tree whose ``.git`` may not match it, as on a
    lent GPU machine: the caller knows what it sent); else HEAD, ``+dirty`` with uncommitted changes,
    ``+unchecked`` when git could not say in time (a fresh clone's first status hashes every file:
    on a busy machine, seconds); None without git. Never raises: a run's record must not fail on it."""
    if os.environ.get("BENCH_GIT_COMMIT"):
        return os.environ["BENCH_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return out.stdout.strip() + "+unchecked"
    if status.returncode != 0:
        return out.stdout.strip() + "+unchecked"
    return out.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def host_environment() -> dict:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_isa": cpu_isa(),
        "isa_caps": isa_caps(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_commit": git_commit(),
    }


def data_environment(data) -> dict:
    """``data`` is a ``harness.data.MNIST``."""
    location = Path(data.location).resolve() if data.source == "idx" else None
    if location is not None and location.is_relative_to(REPO_ROOT):
        location = location.relative_to(REPO_ROOT)  # reports stay valid in any checkout
    return {
        "source": data.source,
        "location": str(location) if location is not None else data.location,
        "train": int(len(data.train_labels)),
        "test": int(len(data.test_labels)),
        "checksums": data.checksums,
    }


#: A run whose other processes took more than this share of the machine's CPU time (beyond its own sibling
#: workers') was measured on a busy machine: its timings say more about the machine than about the code.
BUSY_SHARE = 0.2


class MachineLoad:
    """How busy the machine was while a run ran, besides the run itself: the 1-minute load average at the start
    and the end, and the share of every CPU's time that other processes (and, on a virtual machine, the
    hypervisor: steal) took, from ``/proc/stat`` less this process's own CPU time. Linux only for the share;
    None elsewhere."""

    def __init__(self):
        self.load = _load_average()
        self.busy, self.wall, self.own = _busy_cpu_s(), time.perf_counter(), _own_cpu_s()

    def end(self) -> dict:
        """``{"load_average": [start, end], "other_cpu_share": share}`` from the start until now."""
        busy, wall, own = _busy_cpu_s(), time.perf_counter(), _own_cpu_s()
        share = None
        if busy is not None and self.busy is not None and wall > self.wall:
            others = max(0.0, (busy - self.busy) - (own - self.own))
            share = round(min(1.0, others / ((wall - self.wall) * (os.cpu_count() or 1))), 4)
        loads = [self.load, _load_average()]
        return {"load_average": loads if None not in loads else None, "other_cpu_share": share}


def busy_machine(run: dict) -> str | None:
    """Why ``run`` (a record) was measured on a busy machine, or None: other processes took more than
    :data:`BUSY_SHARE` of the CPUs beyond what its own sibling processes would ((processes - 1) / processes)."""
    share = run.get("other_cpu_share")
    if not isinstance(share, (int, float)):
        return None
    processes = run.get("processes") or 1
    beyond = share - (processes - 1) / processes
    if beyond <= BUSY_SHARE:
        return None
    loads = run.get("load_average") or []
    numbers = len(loads) == 2 and all(isinstance(v, (int, float)) for v in loads)
    load = f", load average {loads[0]:.1f} -> {loads[1]:.1f}" if numbers else ""
    return f"other processes took {share:.0%} of the CPUs while it ran{load}"


def _own_cpu_s() -> float:
    """CPU seconds of this process and its children (finished ones, and live ones such as PyTorch's compile
    workers): the run's own share of the machine."""
    times = os.times()
    return time.process_time() + times.children_user + times.children_system + _live_children_cpu_s()


def _live_children_cpu_s() -> float:
    """CPU seconds of this process's live descendants and of their finished children, from ``/proc`` (0 where
    there is none)."""
    try:
        parents = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                # utime, stime, and cutime, cstime: its own and its finished children's (a compile worker's)
                parents[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
    except OSError:
        return 0.0
    mine, total, grew = {os.getpid()}, 0, True
    while grew:
        grew = False
        for pid, (ppid, ticks) in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                total += ticks
                grew = True
    return total / os.sysconf("SC_CLK_TCK")


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _busy_cpu_s() -> float | None:
    """Seconds every CPU together spent not idle since boot (user, nice, system, interrupts, steal)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def seconds_since_launch() -> float | None:
    """Seconds since this process started, from ``/proc`` (its start in clock ticks after boot against the
    uptime); None where that cannot be read (not Linux)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime: the 20th after the name
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, uptime - started)
