"""Training checkpoints of the Flax models, with Orbax's ``CheckpointManager``.

Each checkpoint is the state of the model and the optimizer (``nnx.split`` of
both: parameters, optimizer moments and counts, and the dropout streams' keys
and counters) as arrays, plus the run's identity and
:class:`~mnist_common.checkpointing.Progress` as JSON. Orbax writes each into a
temporary folder and renames it when complete, so a kill during a save leaves
the previous checkpoints whole; it keeps the last ``keep``. In a multi-process
run every process calls :meth:`save` and :meth:`restore`; Orbax has process 0 write.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils

from jax_impl.parallel import is_key
from mnist_common.checkpointing import (
    CheckpointError,
    Checkpointing,
    Progress,
    check_identity,
    say_resumed,
    set_aside,
    start_over,
)


def _storable(state) -> dict:
    """The state as a pure dict of arrays, random keys as their raw data (Orbax stores plain arrays)."""
    return jax.tree.map(lambda x: np.asarray(jax.random.key_data(x) if is_key(x) else x), state.to_pure_dict())


class Checkpointer:
    """Saves and restores one run's training state in ``plan.directory``."""

    def __init__(self, plan: Checkpointing):
        import orbax.checkpoint as ocp

        self.ocp, self.plan = ocp, plan
        if jax.process_index() == 0:  # one process prepares the folder; with several, the others wait for it
            start_over(plan.directory, plan.resume)
            plan.directory.mkdir(parents=True, exist_ok=True)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"checkpoint folder {plan.directory}")
        self.manager = ocp.CheckpointManager(
            plan.directory.absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=plan.keep, enable_async_checkpointing=False,
                                                 cleanup_tmp_directories=True),
        )

    def save(self, state, progress: Progress, steps_per_epoch: int) -> None:
        """A checkpoint of ``state`` (an ``nnx.State``) at ``progress``, complete when this returns."""
        meta = {"identity": self.plan.identity, "progress": progress.as_dict()}
        args = self.ocp.args.Composite(state=self.ocp.args.StandardSave(_storable(state)),
                                       meta=self.ocp.args.JsonSave(meta))
        self.manager.save(progress.number(steps_per_epoch), args=args, force=True)
        self.manager.wait_until_finished()

    def restore(self, state, steps_per_epoch: int) -> tuple[object, Progress] | None:
        """The newest usable checkpoint, restored into the structure of ``state``, and its progress; None when
        there is none. A damaged one is set aside as ``<step>.damaged`` (said in one line), so that the run goes on
        from the one before it (or from the start) and Orbax can save that step again; one from another run is a
        CheckpointError, and so are processes that restored different steps."""
        target = _storable(state)
        found, damaged = None, []
        for number in sorted(self.manager.all_steps(), reverse=True):
            where = self.plan.directory / str(number)
            try:
                meta = self.manager.restore(number, args=self.ocp.args.Composite(meta=self.ocp.args.JsonRestore()))
                check_identity(meta["meta"]["identity"], self.plan.identity, where)
                restored = self.manager.restore(number, args=self.ocp.args.Composite(
                    state=self.ocp.args.StandardRestore(target)))["state"]
                progress = Progress.from_dict(meta["meta"]["progress"])
            except CheckpointError:
                raise
            except Exception as err:  # noqa: BLE001 - any damage: set it aside, fall back to the one before
                damaged.append((where, err))
                continue
            pure = jax.tree.map(lambda like, x: jax.random.wrap_key_data(x) if is_key(like) else x,
                                state.to_pure_dict(), restored)
            restored_state = nnx.State(state)  # a copy of the structure, its leaves replaced below
            restored_state.replace_by_pure_dict(pure)
            found = restored_state, progress, number
            break
        if jax.process_count() > 1:  # every process must go on from the same step
            steps = multihost_utils.process_allgather(np.int64(found[2] if found else -1))
            if len(set(np.asarray(steps).ravel().tolist())) > 1:
                raise CheckpointError(f"the processes restored different checkpoints from {self.plan.directory} "
                                      f"(steps {sorted(set(np.asarray(steps).ravel().tolist()))}): it must be one "
                                      "folder that every process reads")
        if jax.process_index() == 0:
            for where, err in damaged:
                set_aside(where, err)
        if damaged:
            if jax.process_count() > 1:
                multihost_utils.sync_global_devices(f"set aside damaged checkpoints in {self.plan.directory}")
            self.manager.reload()
        if jax.process_index() == 0:
            say_resumed(self.plan.directory, found[1] if found else None, steps_per_epoch)
        return found[:2] if found else None
