"""XLA CPU flags measured to make these models train faster; nothing changes on other backends.

``--xla_cpu_experimental_ynn_fusion_type=individual_dot`` keeps XLA's YNNPACK
library for single matrix products (which help the ViT) and leaves
convolutions and reductions to XLA's own Eigen kernels (faster for the CNN).
``--xla_cpu_copy_insertion_use_region_analysis=true`` lets XLA write a donated
parameter's new value in place when the parameter is also read by a product
that no data dependency orders before the update (a dense layer's input
gradient reads its weights): without it XLA copied such weights every step,
VGG16's 411 MB first dense layer included.
The measurements, and the flags measured and not set: docs/performance.md,
"XLA CPU flags".

XLA reads ``XLA_FLAGS`` once, when JAX starts its CPU backend, so
:func:`apply` must run before the first JAX computation; it reports whether
the flags are in effect. A flag the user already set in ``XLA_FLAGS`` wins.
The benchmark runner and the parity CLI call it; library users may too.

XLA aborts the whole process on a flag it does not know, and experimental
flags come and go between releases. So the flags go in unchecked only on the
jaxlib releases they were measured on (:data:`MEASURED_JAXLIB`); on any other,
a short subprocess first checks that XLA accepts them (a GPU machine with a
newer jaxlib must not die of a CPU tuning flag).
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import subprocess
import sys

#: flag name -> value, as measured best on the CPU
CPU_FLAGS = {"--xla_cpu_experimental_ynn_fusion_type": "individual_dot",
             "--xla_cpu_copy_insertion_use_region_analysis": "true"}

#: jaxlib version prefixes on which :data:`CPU_FLAGS` were measured (and are known to XLA)
MEASURED_JAXLIB = ("0.10.",)


@functools.cache
def _xla_accepts(flags: str) -> bool:
    """Whether XLA starts with ``flags`` in ``XLA_FLAGS`` (checked in a subprocess: an unknown flag aborts)."""
    try:
        version = md.version("jaxlib")
    except md.PackageNotFoundError:
        return False
    if version.startswith(MEASURED_JAXLIB):
        return True
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    try:
        probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"], env=env,
                               capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _backends_started() -> bool:
    try:
        from jax._src import xla_bridge  # private, hence the guard
    except ImportError:
        return False
    return bool(getattr(xla_bridge, "backends_are_initialized", lambda: False)())


def apply() -> bool:
    """Add :data:`CPU_FLAGS` to ``XLA_FLAGS`` (keeping the user's own); True if they will take effect."""
    current = os.environ.get("XLA_FLAGS", "")
    missing = [f"{name}={value}" for name, value in CPU_FLAGS.items() if name not in current]
    ours = all(f"{name}={value}" in " ".join([current, *missing]) for name, value in CPU_FLAGS.items())
    if not missing:
        return ours  # already in XLA_FLAGS (set before JAX started, presumably)
    if _backends_started():
        return False  # too late: XLA has read XLA_FLAGS; leave the environment as it was
    flags = " ".join([current, *missing]).strip()
    if not _xla_accepts(flags):
        return False  # this jaxlib does not know them (or rejects the user's own): change nothing
    os.environ["XLA_FLAGS"] = flags
    return ours
