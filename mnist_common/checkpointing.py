"""Training checkpoints: what both frameworks keep besides their own state, and when they keep it.

A checkpoint holds the model, the optimizer (and scheduler) state and the random
streams, in each framework's own format (``jax_impl.checkpoint``: Orbax;
``torch_ref.checkpoint``: a ``torch.save`` file that loads with
``weights_only=True``), plus the :class:`Progress` below and the run's identity:
the settings a resumed run must share. Each is written atomically, the last
``keep`` are kept, and a damaged one is set aside as ``<name>.damaged`` (said in
one line) so that the run goes on from the one before it, or from the start, and
can be resumed again.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

from mnist_common.errors import UserError


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be resumed: one line naming the file or the difference."""


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """Where and how often ``fit`` keeps checkpoints: every ``every`` epochs (and when stopped by a
    signal), the last ``keep``. ``resume`` continues from the newest usable one, if any; its
    ``identity`` must equal this run's."""

    directory: Path
    every: int = 1
    keep: int = 3
    resume: bool = False
    identity: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Progress:
    """How far a run got: epoch ``epoch`` (from 0) has ``step`` steps done, whose losses sum to ``loss_sum``
    and which took ``epoch_time_s``; ``history`` holds the finished epochs (``EpochStats.as_dict()``)."""

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    epoch_time_s: float = 0.0
    history: tuple = ()

    def number(self, steps_per_epoch: int) -> int:
        """A checkpoint's number: the steps done so far."""
        return self.epoch * steps_per_epoch + self.step

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"history": list(self.history)}

    @classmethod
    def from_dict(cls, d: dict) -> Progress:
        return cls(d["epoch"], d["step"], d["loss_sum"], d["epoch_time_s"], tuple(d["history"]))


def check_identity(saved: dict, current: dict, where) -> None:
    """CheckpointError naming the first setting in which a checkpoint differs from the run resuming it."""
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise CheckpointError(f"{where} is from another run: its {key} is {saved.get(key)!r}, this run's is "
                                  f"{current.get(key)!r}")


def set_aside(path: Path, err: Exception) -> Path:
    """Rename a damaged checkpoint (a file, or an Orbax step folder) to ``<name>.damaged``, which no later resume
    reads, and say so in one line; the new name. Nothing is deleted: a reader can still look at it."""
    target = path.with_name(path.name + ".damaged")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{n}")
    path.rename(target)
    print(f"warning: checkpoint {path} is damaged ({_short(err)}); set it aside as {target.name}", file=sys.stderr)
    return target


def say_resumed(directory: Path, progress: Progress | None, steps_per_epoch: int) -> None:
    """One line on stderr: where a resumed run goes on from (or that it starts over, having none left)."""
    if progress is None:
        print(f"note: no usable checkpoint in {directory}: this run trains from the start", file=sys.stderr)
    else:
        where = f"epoch {progress.epoch + 1}, step {progress.step}" if progress.step else \
            f"the end of epoch {progress.epoch}"
        print(f"resuming from checkpoint {progress.number(steps_per_epoch)} in {directory} ({where})",
              file=sys.stderr)


def _short(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def start_over(directory: Path, resume: bool) -> None:
    """A run that does not resume starts without the checkpoints an earlier run left in ``directory`` (said
    on stderr): kept, they would be resumed later as if they were this run's, or collide with its own."""
    if resume or not directory.is_dir() or not any(directory.iterdir()):
        return
    print(f"warning: removing the checkpoints an earlier run left in {directory} (add --resume to continue "
          "that run instead)", file=sys.stderr)
    shutil.rmtree(directory)
