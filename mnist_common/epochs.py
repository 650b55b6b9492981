"""The bookkeeping of a training run's epochs, written once for both ``fit``\\ s.

Which epochs are left (a resumed run starts where its checkpoint stopped, maybe
inside an epoch), each epoch's bar and clock, and what ends an epoch: its
:class:`~mnist_common.EpochStats`, the checkpoint when one is due, the epoch line
or the caller's callback, and the answer to a signal. What an epoch computes
(placement, compilation, the steps) stays in each framework's ``fit``; what
happens around it is here, so that the two loops differ only where the
frameworks do.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

from mnist_common.checkpointing import Checkpointing, Progress
from mnist_common.config import EpochStats, TrainConfig
from mnist_common.interrupt import STOP
from mnist_common.progress import EpochProgress, print_epoch


@dataclasses.dataclass(frozen=True)
class WarmUp:
    """The first steps of a run, timed one by one: until a step compiles nothing new (JAX, compiled ahead of
    time, and eager PyTorch: the first step only)."""

    first_step_s: float  # the first step (or call of several steps), synchronised
    compiling_s: float = 0.0  # the steps that compiled (compiled PyTorch only)
    compilations: int = 0  # Dynamo's count when warm-up ended: what comes later is a recompilation
    compiling_steps: int = 0  # how many steps compiled


class Epochs:
    """The epochs a ``fit`` has left, and what it does as each ends.

    ``save(progress)`` writes a checkpoint of the framework's state (None: no
    checkpoints); ``lr_at(step)`` the learning rate after ``step`` (None when the
    caller's optimizer is not ours to read); ``on_epoch`` is called with each
    epoch's stats (by default, with ``progress``, one line is printed);
    ``on_stop()`` runs before a signal's ``StopRequested`` leaves the loop (JAX puts
    what was trained into the model there); ``say`` prints a line (``mnist_common.progress.speaker``);
    ``on_log(step, loss, lr)`` gets the run's step count, the mean loss since the last log and the learning rate,
    at every log (``EpochProgress.due``).
    """

    def __init__(self, label: str, config: TrainConfig, steps: int, *, done_before: Progress = Progress(),
                 checkpointing: Checkpointing | None = None, save: Callable[[Progress], None] | None = None,
                 lr_at: Callable[[int], float | None] = lambda step: None,
                 on_epoch: Callable[[EpochStats], None] | None = None, progress: bool = True, log_every: int = 50,
                 on_stop: Callable[[], None] = lambda: None, say: Callable[[str], None] = lambda text: None,
                 on_log: Callable[[int, float, float | None], None] | None = None):
        self.label, self.config, self.steps, self.say, self.on_log = label, config, steps, say, on_log
        self.done_before, self.checkpointing, self.save = done_before, checkpointing, save
        self.lr_at, self.on_epoch, self.progress, self.log_every = lr_at, on_epoch, progress, log_every
        self.on_stop = on_stop
        self.history = [EpochStats(**h) for h in done_before.history]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """``(epoch, start)`` for every epoch left: ``start`` the step it begins at (not 0 only for an epoch a
        checkpoint stopped inside)."""
        for epoch in range(self.done_before.epoch, self.config.epochs):
            yield epoch, self.done_before.step if self.first(epoch) else 0

    def first(self, epoch: int) -> bool:
        """Whether ``epoch`` is the first this call trains: the one whose first steps are timed as warm-up."""
        return epoch == self.done_before.epoch

    def loss_before(self, epoch: int, start: int) -> float:
        """What the steps of ``epoch`` before ``start`` summed to (a checkpoint's, when it stopped inside)."""
        return self.done_before.loss_sum if start else 0.0

    def bar(self, epoch: int, start: int = 0) -> EpochProgress:
        """``epoch``'s bar, from step ``start`` on (and the loss its steps before it summed to)."""
        on_log = None if self.on_log is None else (lambda step, loss: self.on_log(step, loss, self.lr_at(step - 1)))
        return EpochProgress(self.label, epoch, self.config.epochs, self.steps, self.config.batch_size,
                             enabled=self.progress, log_every=self.log_every, say=self.say, on_log=on_log,
                             start=start, loss_before=self.loss_before(epoch, start))

    def elapsed(self, start: int, t0: float) -> float:
        """Seconds of the epoch so far: since ``t0``, plus what its steps before ``start`` took."""
        return time.perf_counter() - t0 + (self.done_before.epoch_time_s if start else 0.0)

    def stop_inside(self, epoch: int, done: int, loss_sum: float, epoch_time: float) -> None:
        """A signal stopped ``epoch`` after ``done`` steps: keep a checkpoint of where it is, then stop
        (``StopRequested``)."""
        if self.save is not None:
            self.save(Progress(epoch, done, loss_sum, epoch_time, self._finished()))
        self._stop()

    def end(self, epoch: int, loss_sum: float, epoch_time: float, images: int, val: dict) -> EpochStats:
        """``epoch`` finished: its stats (the mean of ``loss_sum`` over its steps, ``images`` timed in
        ``epoch_time``, the validation ``val``) recorded, a checkpoint when one is due (every
        ``checkpointing.every`` epochs, the last, and on a signal), the epoch shown; a signal that arrived during
        the epoch is answered here, after its checkpoint, even when every step had been queued before it came."""
        stats = EpochStats(epoch + 1, loss_sum / self.steps, epoch_time, images / epoch_time,
                           self.lr_at((epoch + 1) * self.steps - 1), **val)
        self.history.append(stats)
        stopping = STOP.signum is not None
        if self.save is not None and ((epoch + 1) % self.checkpointing.every == 0
                                      or epoch + 1 == self.config.epochs or stopping):
            self.save(Progress(epoch + 1, history=self._finished()))
        if self.on_epoch is not None:
            self.on_epoch(stats)
        elif self.progress:
            print_epoch(self.label, self.config.epochs, stats)
        if stopping:
            self._stop()
        return stats

    def _stop(self) -> None:
        self.on_stop()
        STOP.check()

    def _finished(self) -> tuple:
        return tuple(h.as_dict() for h in self.history)

    @property
    def resumed_from(self) -> tuple[int, int] | None:
        """(epoch, step) of the checkpoint this call went on from; None when it trained from the start."""
        before = self.done_before
        return (before.epoch, before.step) if before.epoch or before.step else None

    @property
    def train_time_s(self) -> float:
        return sum(h.epoch_time_s for h in self.history)
