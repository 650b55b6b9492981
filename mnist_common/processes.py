"""Which process of a multi-process run this is, read from the launcher's environment, and its share of a batch.

Both frameworks' distributed runtimes start from the same facts, so one
reading serves both: torchrun's variables (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), which ``harness.launch``
sets as torchrun does, or else those of a SLURM job step that ``srun`` started
with several tasks (``SLURM_STEP_NUM_TASKS``, ``SLURM_PROCID``, ``SLURM_LOCALID``;
a batch script's own ``SLURM_NTASKS`` is not a step's, so a plain ``python``
in it stays one process). PyTorch's process group meets at ``MASTER_ADDR:MASTER_PORT``;
JAX's coordinator listens one port above (``MASTER_PORT + 1``), because under
torchrun the launcher's own store holds ``MASTER_PORT``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from mnist_common.errors import UserError


class ProcessesError(UserError):
    """A multi-process setting that cannot work (a batch the processes cannot share, a missing address):
    one line, exit 2."""


@dataclasses.dataclass(frozen=True)
class World:
    """``size`` processes; this one is ``rank`` (``local_rank`` on its host). ``address``/``port``: where
    process 0 listens (None when the environment names none, as under a bare SLURM allocation)."""

    size: int = 1
    rank: int = 0
    local_rank: int = 0
    address: str | None = None
    port: int | None = None

    @property
    def main(self) -> bool:
        """Process 0: the one that prints and writes."""
        return self.rank == 0

    @property
    def jax_coordinator(self) -> str | None:
        """``host:port`` of JAX's coordinator (``MASTER_PORT + 1``), or None to let JAX detect the cluster."""
        return f"{self.address}:{self.port + 1}" if self.address and self.port else None

    def share(self, batch_size: int) -> slice:
        """This process's rows of a global batch of ``batch_size``: the ``rank``-th of ``size`` equal slices
        (the rows JAX's ``("batch",)`` mesh gives this process's devices)."""
        if batch_size % self.size:
            raise ProcessesError(f"the batch of {batch_size} does not split over {self.size} processes: "
                                 "give a --batch-size that is a multiple of --processes")
        per = batch_size // self.size
        return slice(self.rank * per, (self.rank + 1) * per)


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ProcessesError(f"${name} must be an integer, got {env[name]!r}") from None


def world_from_environment(env: Mapping[str, str] | None = None) -> World:
    """The :class:`World` the environment describes; one process when it describes none."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" in env:
        size, rank = _int(env, "WORLD_SIZE"), _int(env, "RANK") if "RANK" in env else 0
        local = _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else rank
    elif _int(env, "SLURM_STEP_NUM_TASKS") > 1 if "SLURM_STEP_NUM_TASKS" in env else False:
        size, rank, local = _int(env, "SLURM_STEP_NUM_TASKS"), _int(env, "SLURM_PROCID"), _int(env, "SLURM_LOCALID")
    else:
        return World()
    if size < 1 or not 0 <= rank < size:
        raise ProcessesError(f"rank {rank} of {size} processes is not a valid process")
    port = _int(env, "MASTER_PORT") if "MASTER_PORT" in env else None
    return World(size, rank, local, env.get("MASTER_ADDR") or None, port)
