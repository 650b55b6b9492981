"""Data parallelism over processes: ``torch.distributed`` and ``DistributedDataParallel``, the twin of
``jax_impl.parallel``.

Each process trains one replica on its rows of every global batch (rank ``r``
of ``n`` takes rows ``r * B/n .. (r+1) * B/n``, as JAX's mesh gives them);
DDP averages the gradients, so with equal shares the update is the one-process
update on the whole batch, up to the order of summation.
"""

from __future__ import annotations

import datetime
import os
import warnings

import torch
import torch.distributed as dist
from torch import nn

from mnist_common.processes import ProcessesError, World

#: How long a collective waits for a silent peer before it fails (a peer that exits closes its
#: sockets, which fails the collective at once).
TIMEOUT = datetime.timedelta(minutes=5)


def initialize(world: World, device: torch.device) -> None:
    """Join the run's ``world.size`` processes (``init_process_group``: gloo on a CPU, NCCL on a CUDA GPU);
    nothing for one process.

    The group meets through the environment (``env://``): ``MASTER_ADDR``,
    ``MASTER_PORT``, ``RANK`` and ``WORLD_SIZE``, as torchrun and
    ``harness.launch`` set them (taken from ``world`` where missing, as under SLURM).
    """
    if world.size == 1 or dist.is_initialized():
        return
    if not (world.address and world.port) and not ("MASTER_ADDR" in os.environ and "MASTER_PORT" in os.environ):
        raise ProcessesError("PyTorch's processes need the address of process 0: set MASTER_ADDR and MASTER_PORT "
                             "(or launch with torchrun)")
    for name, value in (("RANK", world.rank), ("WORLD_SIZE", world.size), ("LOCAL_RANK", world.local_rank)):
        os.environ.setdefault(name, str(value))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://", timeout=TIMEOUT)


def world() -> tuple[int, int]:
    """(processes, this one's rank) of the process group; (1, 0) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def replicate(model: nn.Module) -> nn.Module:
    """``model`` as a DDP replica (its parameters broadcast from rank 0 now, gradients averaged in backward)."""
    device = next(model.parameters()).device
    # A convolution with one input channel gets its weight gradient with another stride on that size-1 axis
    # than the parameter's: the same memory layout, which DDP's check still reports on every step.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def agreed(values: tuple[int, ...]) -> bool:
    """Whether every process holds the same ``values`` (a collective: every process calls it)."""
    mine = torch.tensor(values, dtype=torch.int64)
    low, high = mine.clone(), mine.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    return bool(torch.equal(low, high))


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over the processes (a collective: every process calls it at the same point)."""
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()
