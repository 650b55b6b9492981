"""What a training loop shows while it runs, the same for both frameworks: a progress bar, the
running loss (checked for divergence), and one line per finished epoch."""

from __future__ import annotations

import math
import sys
import time

from tqdm.auto import tqdm

from mnist_common.config import EpochStats


class EpochProgress:
    """One epoch's bar. The loop calls :meth:`log` with the summed loss when :meth:`due` says so
    (every ``log_every`` steps and at the end): the only times it reads the loss on the host."""

    def __init__(self, label: str, epoch: int, epochs: int, steps: int, batch_size: int, *, enabled: bool,
                 log_every: int):
        self.label, self.epoch, self.steps, self.batch_size = label, epoch, steps, batch_size
        self.log_every = max(1, log_every)
        self.bar = tqdm(total=steps, desc=f"{label:<5} epoch {epoch + 1}/{epochs}", disable=not enabled, leave=False)
        self.logged, self.t_logged = 0, time.perf_counter()

    def due(self, before: int, done: int) -> bool:
        """Whether the steps from ``before`` to ``done`` crossed a logging point (or ended the epoch)."""
        return done // self.log_every > before // self.log_every or done == self.steps

    def log(self, done: int, loss_sum: float) -> None:
        """Show the running mean loss after ``done`` steps; raise FloatingPointError if it is not finite."""
        running = loss_sum / done
        if not math.isfinite(running):
            self.bar.close()
            raise FloatingPointError(f"non-finite training loss at epoch {self.epoch + 1}, step {done}")
        now = time.perf_counter()
        self.bar.update(done - self.logged)
        self.bar.set_postfix(loss=f"{running:.4f}",
                             img_s=f"{(done - self.logged) * self.batch_size / (now - self.t_logged):.0f}")
        self.logged, self.t_logged = done, now

    def close(self) -> None:
        self.bar.close()


def epoch_line(label: str, epochs: int, stats: EpochStats) -> str:
    """``jax   epoch 2/6: loss 0.0412, val acc 98.90%, 7.1 s, 7745 images/s``."""
    val = f", val acc {stats.val_accuracy:.2%}" if stats.val_accuracy is not None else ""
    return (f"{label:<5} epoch {stats.epoch}/{epochs}: loss {stats.train_loss:.4f}{val}, "
            f"{stats.epoch_time_s:.1f} s, {stats.images_per_s:.0f} images/s")


def print_epoch(label: str, epochs: int, stats: EpochStats) -> None:
    tqdm.write(epoch_line(label, epochs, stats), file=sys.stderr)
