"""Which x86-64 instruction sets each library really used, so that a parity report can say it.

float32 results depend on the kernels a library picks, and it picks them by the
CPU's instruction sets (AVX2, AVX-512, AMX) unless told otherwise. Four settings
cap them, and :func:`effective` reads back what each library then did:

* ``XLA_FLAGS=--xla_cpu_max_isa=AVX2``: XLA's generated code. Read back by
  compiling a small kernel with ``--xla_dump_to`` and looking at the widest
  vector registers in its object code (``objdump``; ``None`` where it is missing).
* ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's convolutions in PyTorch, read from its
  verbose banner (a small convolution in a child process).
* ``ATEN_CPU_CAPABILITY=avx2``: ATen's own vectorised kernels,
  ``torch.backends.cpu.get_cpu_capability()``; Inductor's generated C++ reads the
  same variable (``torch._inductor.cpu_vec_isa.pick_vec_isa``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The settings that hold both frameworks to AVX2, as the docs give them.
AVX2_ENV = {"XLA_FLAGS": "--xla_cpu_max_isa=AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}

_XLA_PROBE = """
import jax, jax.numpy as jnp
jax.jit(lambda x: jnp.tanh(x) * 2 + 1)(jnp.ones((4096,), jnp.float32)).block_until_ready()
"""
_ONEDNN_PROBE = """
import torch
torch.nn.functional.conv2d(torch.randn(32, 32, 28, 28), torch.randn(64, 32, 3, 3), padding=1)
"""  # (large enough that PyTorch hands it to oneDNN)


def caps() -> dict:
    """The caps set in this process's environment (absent: the library's own choice)."""
    flags = re.search(r"--xla_cpu_max_isa=(\S+)", os.environ.get("XLA_FLAGS", ""))
    return {"xla": flags.group(1) if flags else None, "onednn": os.environ.get("ONEDNN_MAX_CPU_ISA"),
            "aten": os.environ.get("ATEN_CPU_CAPABILITY")}


def _child(code: str, env: dict) -> subprocess.CompletedProcess | None:
    """``code`` run in a child interpreter with ``env``; None when it failed or took over two minutes."""
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None
    return proc if proc.returncode == 0 else None


def xla_vector_width() -> str | None:
    """The widest vector registers in XLA's code for a small elementwise kernel: ``zmm`` (AVX-512), ``ymm``
    (AVX/AVX2), ``xmm`` (SSE); None without ``objdump`` or when nothing was dumped."""
    objdump = shutil.which("objdump")
    if objdump is None:
        return None
    with tempfile.TemporaryDirectory() as dump:
        env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={dump}".strip(),
                   JAX_PLATFORMS="cpu", JAX_ENABLE_COMPILATION_CACHE="false")  # compiled now, so dumped
        if _child(_XLA_PROBE, env) is None:
            return None
        text = "".join(subprocess.run([objdump, "-d", str(o)], capture_output=True, text=True).stdout
                       for o in Path(dump).glob("*lambda*.o"))
    return next((reg for reg in ("zmm", "ymm", "xmm") if f"%{reg}" in text), None)


def onednn_isa() -> str | None:
    """oneDNN's ``isa:`` banner for a PyTorch convolution (``Intel AVX2``...), None if it printed none."""
    proc = _child(_ONEDNN_PROBE, dict(os.environ, ONEDNN_VERBOSE="1"))
    found = re.search(r"isa:([^\n,]+)", proc.stdout) if proc is not None else None
    return found.group(1).strip() if found else None


def effective() -> dict:
    """What each library used in this environment: ``{"caps": ..., "xla": "ymm", "onednn": "Intel AVX2",
    "aten": "AVX2", "inductor": "avx2"}``."""
    import torch

    try:
        from torch._inductor import cpu_vec_isa

        inductor = str(cpu_vec_isa.pick_vec_isa()) or None
    except Exception:  # noqa: BLE001 - a private module; what it says is a note, never a check
        inductor = None
    return {"caps": caps(), "xla": xla_vector_width(), "onednn": onednn_isa(),
            "aten": torch.backends.cpu.get_cpu_capability(), "inductor": inductor}


def describe(isas: dict) -> str:
    """One line for a report: what was capped and what each library used."""
    capped = ", ".join(f"{k} {v}" for k, v in isas["caps"].items() if v) or "none (each library's own choice)"
    used = (f"XLA code {isas['xla'] or '?'} registers, oneDNN {isas['onednn'] or '?'}, ATen {isas['aten'] or '?'}, "
            f"Inductor {isas['inductor'] or '?'}")
    return f"instruction-set caps: {capped}; used: {used}"
