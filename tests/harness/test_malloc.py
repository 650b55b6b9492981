"""harness.malloc: big buffers freed and allocated again stop costing page faults (each case in a fresh process)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
from cli_helpers import REPO

# rounds of allocating, writing and freeing a block (64 MB is over glibc's largest mmap threshold), counting
# page faults after one warm-up round
CODE = """
import ctypes, json, resource, sys
from harness import malloc
applied = malloc.keep_large_buffers() if sys.argv[1] == "tuned" else {}
again = malloc.keep_large_buffers() is applied if applied else True
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def touch_and_free(n):  # glibc's malloc, as XLA's temporaries use it; every page written
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    libc.free(p)
size, rounds = int(sys.argv[2]), int(sys.argv[3])
touch_and_free(size)  # warm-up: the heap grows once
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(rounds):
    touch_and_free(size)
print(json.dumps({"applied": applied, "again": again,
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0}))
"""


def _faults(mode: str, env: dict | None = None, *, size: int = 64 << 20, rounds: int = 20) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | (env or {})
    proc = subprocess.run([sys.executable, "-c", CODE, mode, str(size), str(rounds)], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False, env=env | {"PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
@pytest.mark.e2e  # a fresh interpreter
def test_tuned_malloc_keeps_big_buffers_without_page_faults():
    tuned, default = _faults("tuned"), _faults("default")
    assert tuned["applied"] == {"M_MMAP_MAX": 0, "M_ARENA_MAX": 1, "M_TRIM_THRESHOLD": -1}
    assert tuned["again"]  # applied once per process, the same answer after
    pages = 20 * (64 << 20) // 4096  # what 20 fresh 64 MB buffers fault in
    assert default["faults"] > pages // 2, default  # glibc's own: every buffer is a fresh mmap
    assert tuned["faults"] < pages // 20, tuned  # tuned: the heap keeps the pages


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
@pytest.mark.e2e  # a fresh interpreter
def test_a_freed_block_over_a_gib_stays_in_the_heap():
    # VGG16's step frees over a GiB at the heap's top: a finite trim threshold (1 GiB) handed it back each step
    size = 5 << 28  # 1.25 GiB
    tuned = _faults("tuned", size=size, rounds=2)
    assert tuned["faults"] < 2 * (size // 4096) // 20, tuned


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
@pytest.mark.e2e  # a fresh interpreter
def test_the_users_own_malloc_variables_are_left_in_charge():
    out = _faults("tuned", {"MALLOC_ARENA_MAX": "4"})
    assert out["applied"]["M_ARENA_MAX"] == "environment" and out["applied"]["M_MMAP_MAX"] == 0
