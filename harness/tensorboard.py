"""TensorBoard event files for every run, both frameworks: ``OUT/tensorboard/<run>/``.

Written through tensorboardX (pure Python, on protobuf, which the checkpoints
already need), the writer that JAX and PyTorch users' TensorBoard reads as it
reads ``torch.utils.tensorboard``'s and Flax's. Every run writes the same tags
against the same x-axis (the training step, or the epoch), so ``tensorboard
--logdir OUT/tensorboard`` lays both frameworks' curves on one chart:

- ``train/loss`` and ``train/learning_rate``: at every progress log (every 50
  steps or second), the mean training loss since the last;
- ``epoch/train_loss``, ``epoch/val_loss``, ``epoch/val_accuracy``,
  ``epoch/images_per_s``, ``epoch/time_s``: per epoch;
- ``test/accuracy``, ``test/macro_f1``, ``test/loss``, ``time/compile_s``,
  ``time/train_s``, ``time/images_per_s``: once, when the run is tested;
- ``settings`` (text): the run's settings and the weights it started from.

Without tensorboardX the runs go on, and one line says how to get the logs.
tensorboardX is imported when the first run starts, never with this module, and
without PyTorch when PyTorch is not loaded yet (:func:`_summary_writer`): a JAX
run never loads the other framework.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from mnist_common.config import EpochStats

#: Where a command's event files go, under its output folder.
FOLDER = "tensorboard"
#: What is said once when the writer library is missing.
MISSING = "TensorBoard logs are off: tensorboardX is not installed (pip install tensorboardX)"


class RunBoard:
    """The event file of one run in ``folder`` (``OUT/tensorboard/<run>``); every method is a no-op when
    tensorboardX is missing (:data:`available`)."""

    available = importlib.util.find_spec("tensorboardX") is not None

    def __init__(self, folder: Path, settings: dict):
        self.writer = _summary_writer()(logdir=str(folder), flush_secs=10) if self.available else None
        if self.writer is not None:
            rows = "\n".join(f"| {k} | {v} |" for k, v in settings.items())
            self.writer.add_text("settings", f"| setting | value |\n|---|---|\n{rows}", 0)

    def interval(self, step: int, loss: float, lr: float | None) -> None:
        """At a progress log: the mean training loss since the last one, and the learning rate, at ``step``."""
        if self.writer is None:
            return
        self.writer.add_scalar("train/loss", loss, step)
        if lr is not None:
            self.writer.add_scalar("train/learning_rate", lr, step)

    def epoch(self, stats: EpochStats) -> None:
        if self.writer is None:
            return
        for tag, value in (("train_loss", stats.train_loss), ("val_loss", stats.val_loss),
                           ("val_accuracy", stats.val_accuracy), ("images_per_s", stats.images_per_s),
                           ("time_s", stats.epoch_time_s)):
            if value is not None:
                self.writer.add_scalar(f"epoch/{tag}", value, stats.epoch)

    def finished(self, run: dict) -> None:
        """The run's record (``harness.record``): its test metrics and times."""
        if self.writer is None:
            return
        step = run.get("epochs") or 0
        for tag, key in (("test/accuracy", "test_accuracy"), ("test/macro_f1", "test_macro_f1"),
                         ("test/loss", "test_loss"), ("time/compile_s", "compile_time_s"),
                         ("time/train_s", "train_time_s"), ("time/images_per_s", "images_per_s")):
            if run.get(key) is not None:
                self.writer.add_scalar(tag, run[key], step)
        self.writer.add_text("weights", str(run.get("weights")), 0)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _summary_writer():
    """tensorboardX's ``SummaryWriter``. tensorboardX imports PyTorch, when it can, only to accept its tensors, which
    are never given here; so unless PyTorch is loaded already, it is hidden while tensorboardX is imported."""
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # ``import torch`` raises ImportError meanwhile
    try:
        from tensorboardX import SummaryWriter
    finally:
        if hide:
            del sys.modules["torch"]
    return SummaryWriter
