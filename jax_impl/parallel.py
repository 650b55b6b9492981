"""Data parallelism: a 1-D ``("batch",)`` mesh over the devices that split each batch, on one process or many.

``fit`` replicates the training state over the mesh and shards each batch
along it (``NamedSharding``); the gradients are summed over the mesh as
:func:`all_reduce_for` decides. The mathematics is one device's; only the
order of summation differs.

Several processes (one per host or GPU) join JAX's multi-controller runtime
with :func:`initialize` before any computation; the mesh then spans every
process's devices, ordered by process, so process ``r`` holds rows
``r * B/n .. (r+1) * B/n`` of each global batch of ``B`` (as
``mnist_common.processes.World.share`` says). On CPUs the collectives go
through gloo.

The gradients' sum is XLA's own (an all-reduce of every gradient tensor, which
gloo reduces one by one) or, with ``all_reduce="flat"``, one all-reduce of the
gradients raveled into one buffer (``jax_impl.train``): :func:`all_reduce_for`
decides.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from jax_impl.kernels import dropout
from mnist_common.processes import ProcessesError, World

#: Seconds without a heartbeat after which JAX's coordinator declares a process dead and stops the others.
HEARTBEAT_TIMEOUT_S = 30


def initialize(world: World) -> None:
    """Join the run's ``world.size`` processes (``jax.distributed.initialize``); nothing for one process.

    Must come before JAX's first computation. With no address in the environment
    (a bare SLURM allocation, say) JAX detects the cluster itself.
    """
    if world.size == 1 or jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # SIGTERM from a launcher stopping the workers ends this one, as it ends a PyTorch worker; JAX's preemption
    # service would take it as a notice and train on until the launcher's SIGKILL.
    jax.config.update("jax_enable_preemption_service", False)
    where = {}
    if world.jax_coordinator:
        where = dict(coordinator_address=world.jax_coordinator, num_processes=world.size, process_id=world.rank)
    jax.distributed.initialize(**where, heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S, initialization_timeout=120)


def batch_mesh(batch_size: int, devices: int | None = None) -> Mesh | None:
    """A ``("batch",)`` mesh over the devices that divide ``batch_size``; None for one device.

    ``devices`` caps the devices of each process (1: none of this process's
    parallelism). With several processes every process takes part with the same
    number of devices, and a batch they cannot share is a ProcessesError.
    """
    local = jax.local_devices()
    n = min(len(local), devices or len(local))
    if jax.process_count() > 1:
        ranks = range(jax.process_count())
        chosen = [d for r in ranks for d in sorted((d for d in jax.devices() if d.process_index == r),
                                                   key=lambda d: d.id)[:n]]
        if batch_size % len(chosen):
            raise ProcessesError(f"the batch of {batch_size} does not split over {len(chosen)} devices of "
                                 f"{jax.process_count()} processes")
        return Mesh(np.array(chosen), ("batch",))
    while n > 1 and batch_size % n:
        n -= 1
    return Mesh(np.array(local[:n]), ("batch",)) if n > 1 else None


def is_key(x) -> bool:
    """Whether ``x`` is a typed random key array (stored and moved as its raw ``key_data``)."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def place(tree, where):
    """``tree`` (NumPy or JAX arrays, random keys included) on ``where``: a sharding of the mesh, or one local
    device.

    Through the host, leaf by leaf: each process builds only the parts its own
    devices hold (``jax.make_array_from_callback``), so no process sends another
    its data and nothing checks, at the cost of a collective, that the processes'
    copies agree (the caller's contract: every process passes the same values).
    Back to one device, a replicated array's local copy is used. (A
    device-to-device resharding would be a cross-device collective, which
    deadlocked on XLA CPU with 2 virtual devices on 2 cores when measured.)
    """
    def leaf(x):
        if is_key(x):
            return jax.random.wrap_key_data(leaf(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        if isinstance(x, jax.Array):
            x = x.addressable_data(0) if not x.is_fully_addressable else x
            x = np.asarray(jax.device_get(x))
        else:
            x = np.asarray(x)
        if isinstance(where, jax.Device):
            return jax.device_put(x, where)
        return jax.make_array_from_callback(x.shape, where, lambda index: x[index])

    return jax.tree.map(leaf, tree)


def flat_all_reduce_blocker(model: nnx.Module) -> str | None:
    """Why ``model`` cannot train with the flat all-reduce, or None when it can.

    That step runs each device's rows as a model of its own, so a layer must
    not depend on the whole batch: dropout has to be the tuned one, which draws
    its rows of the whole batch's mask (Flax's own draws the same mask on every
    device), and nothing may compute batch statistics.
    """
    for path, module in nnx.iter_modules(model):
        name = ".".join(map(str, path)) or type(model).__name__
        if isinstance(module, nnx.Dropout) and module.rate > 0 and (
                not isinstance(module, dropout.Dropout) or module.broadcast_dims):
            return f"{name} is Flax's own dropout (build the model with kernels='tuned')"
        if hasattr(module, "use_running_average"):
            return f"{name} computes batch statistics"
    return None


def all_reduce_for(choice: str, mesh: Mesh | None, model: nnx.Module) -> str | None:
    """How a step over ``mesh`` sums ``model``'s gradients: ``"flat"`` or ``"xla"``; None on one device.

    ``choice``: ``mnist_common.config.ALL_REDUCES``. ``"auto"`` is flat across
    processes, where it was measured faster (gloo), when the model allows it;
    ``"flat"`` for a model that does not is a ValueError saying why.
    """
    if mesh is None:
        return None
    blocker = flat_all_reduce_blocker(model)
    if choice == "flat" and blocker:
        raise ValueError(f"the flat all-reduce needs every device's rows computed alone, but {blocker}")
    if choice == "auto":
        return "flat" if blocker is None and jax.process_count() > 1 else "xla"
    return choice
