"""glibc malloc settings that keep a training step's large buffers in memory between steps.

A training step of these models allocates and frees buffers of tens of MB
(Eigen's convolution-gradient temporaries, XLA's temporaries). glibc serves
blocks that large with a fresh ``mmap`` and returns them with ``munmap``, so
every step faulted their pages in again; allocations from worker threads go to
arenas capped at 64 MiB, which fall back to ``mmap`` whatever the thresholds.
Hence three settings:

* ``M_MMAP_MAX = 0``: no allocation is served by its own ``mmap``;
* ``M_ARENA_MAX = 1``: every thread allocates from the main heap (which grows
  without that 64 MiB limit);
* ``M_TRIM_THRESHOLD = -1``: freed memory at the top of the heap is never
  handed back to the kernel (glibc's documented value for "no trimming"). A
  threshold of 1 GiB was not enough for VGG16: with steps dispatched ahead,
  over a GiB came free at the heap's top once a step, was trimmed, and the
  next step faulted it in again (a fifth of its speed lost).

The cost: the process keeps its peak heap instead of returning it between
steps. The runner applies this once per process, before any framework loads,
so both frameworks always run under the same allocator settings, and records
it in every report's environment (``--malloc default`` turns it off).
Settings already given through glibc's environment variables
(``MALLOC_MMAP_MAX_`` and friends) are left alone. What it changed, and how it
was measured: docs/performance.md, "The allocator".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameter numbers, from glibc's <malloc.h>
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8

#: mallopt parameter -> value, with the environment variable that would set it instead
SETTINGS = {
    "M_MMAP_MAX": (M_MMAP_MAX, 0, "MALLOC_MMAP_MAX_"),
    "M_ARENA_MAX": (M_ARENA_MAX, 1, "MALLOC_ARENA_MAX"),
    "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, -1, "MALLOC_TRIM_THRESHOLD_"),  # -1: never trim
}

_applied: dict | None = None


def keep_large_buffers() -> dict:
    """Apply :data:`SETTINGS` through ``mallopt`` (once per process); return what took effect.

    ``{"M_MMAP_MAX": 0, ...}`` for each setting applied, ``"environment"`` where
    the user's own environment variable was left in charge; ``{}`` where there is
    no glibc ``mallopt`` (macOS, musl, Windows).
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = {}
    if not sys.platform.startswith("linux"):
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl has a mallopt that does nothing
    except (OSError, AttributeError):
        return _applied
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for name, (param, value, env) in SETTINGS.items():
        if env in os.environ:
            _applied[name] = "environment"
        elif mallopt(param, value) == 1:
            _applied[name] = value
    return _applied
