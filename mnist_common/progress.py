"""What a training loop shows while it runs, the same for both frameworks: a progress bar, the
running loss (checked for divergence), and one line per finished epoch."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from tqdm.auto import tqdm

from mnist_common.config import EpochStats


#: The bar moves at least this often (seconds), however long a step takes or however many steps ``log_every`` is.
LOG_SECONDS = 1.0


def speaker(label: str, say: Callable[[str], None] | None, enabled: bool) -> Callable[[str], None]:
    """``say`` as it is, or (None) a function printing ``label`` and a line on stderr when ``enabled``: how a
    ``fit`` tells what it is doing before its first epoch line (compiling, and how long that took)."""
    if say is not None:
        return say
    if not enabled:
        return lambda text: None
    return lambda text: tqdm.write(f"{label:<5} {text}", file=sys.stderr)


class EpochProgress:
    """One epoch's bar. The loop calls :meth:`log` with the summed loss when :meth:`due` says so
    (every ``log_every`` steps, every :data:`LOG_SECONDS` and at the end): the only times it reads the loss on the
    host. ``say`` prints a line above the bar (``speaker``). An epoch resumed inside begins at step ``start``,
    its steps before it having summed to ``loss_before``: the first log's mean is over the steps since then."""

    def __init__(self, label: str, epoch: int, epochs: int, steps: int, batch_size: int, *, enabled: bool,
                 log_every: int, say: Callable[[str], None] = lambda text: None,
                 on_log: Callable[[int, float], None] | None = None, start: int = 0, loss_before: float = 0.0):
        self.label, self.epoch, self.steps, self.batch_size = label, epoch, steps, batch_size
        self.log_every, self.say, self.on_log = max(1, log_every), say, on_log
        self.bar = tqdm(total=steps, initial=start, desc=f"{label:<5} epoch {epoch + 1}/{epochs}",
                        disable=not enabled, leave=False)
        self.logged, self.t_logged, self.sum_logged = start, time.perf_counter(), loss_before

    def due(self, before: int, done: int, *, by_time: bool = True) -> bool:
        """Whether the steps from ``before`` to ``done`` crossed a logging point, ended the epoch, or (``by_time``)
        :data:`LOG_SECONDS` passed since the last log (a host clock read: no device sync). Processes whose log is
        a collective (PyTorch's all-reduce of the loss) pass ``by_time=False``: their clocks would not agree."""
        return (done // self.log_every > before // self.log_every or done == self.steps
                or by_time and time.perf_counter() - self.t_logged >= LOG_SECONDS)

    def log(self, done: int, loss_sum: float) -> None:
        """Show the running mean loss after ``done`` steps, and give ``on_log`` the run's step count and the mean
        loss since the last log; raise FloatingPointError if it is not finite."""
        running = loss_sum / done
        if not math.isfinite(running):
            self.bar.close()
            raise FloatingPointError(f"non-finite training loss at epoch {self.epoch + 1}, step {done}")
        now = time.perf_counter()
        self.bar.update(done - self.logged)
        self.bar.set_postfix(loss=f"{running:.4f}",
                             img_s=f"{(done - self.logged) * self.batch_size / (now - self.t_logged):.0f}")
        if self.on_log is not None:
            self.on_log(self.epoch * self.steps + done, (loss_sum - self.sum_logged) / (done - self.logged))
        self.logged, self.t_logged, self.sum_logged = done, now, loss_sum

    def close(self) -> None:
        self.bar.close()


def epoch_line(label: str, epochs: int, stats: EpochStats) -> str:
    """``jax   epoch 2/6: loss 0.0412, val acc 98.90%, 7.1 s, 7745 images/s``."""
    val = f", val acc {stats.val_accuracy:.2%}" if stats.val_accuracy is not None else ""
    return (f"{label:<5} epoch {stats.epoch}/{epochs}: loss {stats.train_loss:.4f}{val}, "
            f"{stats.epoch_time_s:.1f} s, {stats.images_per_s:.0f} images/s")


def print_epoch(label: str, epochs: int, stats: EpochStats) -> None:
    tqdm.write(epoch_line(label, epochs, stats), file=sys.stderr)
