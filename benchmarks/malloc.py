"""glibc malloc settings that keep a training step's large buffers in memory between steps.

What was measured (2-core CPU, batch 128, ``strace`` and ``getrusage``): every
training step of the JAX CNN allocated and freed two buffers of 58 and 37 MB
(Eigen's convolution-gradient temporaries), and the ViT's step one of 79 MB
(XLA's temporaries). glibc serves blocks over its mmap threshold (at most
32 MiB) with a fresh ``mmap`` and returns them with ``munmap``, so each step
faulted in those pages again: 9,200 page faults a step for the CNN, 19,500 for
the ViT. Allocations from worker threads go to per-thread arenas whose heaps
are at most 64 MiB, and glibc falls back to ``mmap`` for anything larger
there whatever the mmap settings, so the fix takes three settings:

* ``M_MMAP_MAX = 0``: no allocation is served by its own ``mmap``;
* ``M_ARENA_MAX = 1``: every thread allocates from the main heap (which grows
  without that 64 MiB limit);
* ``M_TRIM_THRESHOLD = 1 GiB``: freed memory at the top of the heap is kept
  rather than handed back to the kernel at once.

With them, page faults fell to about 100 a step and JAX trained much faster
on the CPU, while PyTorch (whose steps faulted about half as often) stayed
about where it was: ``docs/results/cpu-2core-malloc/comparison.md`` is the
side-by-side measurement, made with the runner's ``--malloc default`` and
``--malloc tuned``. The cost: the process keeps its peak heap (a few hundred
MB here) instead of returning it between steps.

The runner applies this once per process, before any framework loads, so
both frameworks always run under the same allocator settings; it is recorded
in every report's environment. Settings already given through glibc's
environment variables (``MALLOC_MMAP_MAX_`` and friends) are left alone.
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
    "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, 1 << 30, "MALLOC_TRIM_THRESHOLD_"),
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
