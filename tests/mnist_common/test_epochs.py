"""The epoch bookkeeping both fits share: which epochs are left, checkpoint cadence, stats, the answer to a signal."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from mnist_common import EpochStats, TrainConfig
from mnist_common.checkpointing import Checkpointing, Progress
from mnist_common.epochs import Epochs
from mnist_common.interrupt import STOP, StopRequested

STEPS = 10


@pytest.fixture(autouse=True)
def no_stop():
    STOP.clear()
    yield
    STOP.clear()


def _epochs(epochs=4, every=2, done_before=Progress(), **kwargs):
    saved, shown, stopped = [], [], []
    e = Epochs("jax", TrainConfig(epochs=epochs, batch_size=8), STEPS, done_before=done_before,
               checkpointing=Checkpointing(Path("unused"), every=every), save=saved.append,
               lr_at=lambda step: 0.1 * step, on_epoch=shown.append, on_stop=lambda: stopped.append(True), **kwargs)
    return e, saved, shown, stopped


def test_a_fresh_run_checkpoints_at_its_cadence_and_at_the_end():
    e, saved, shown, _ = _epochs(epochs=5, every=2)
    assert list(e) == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)]
    for epoch in range(5):
        stats = e.end(epoch, loss_sum=2.0 * STEPS, epoch_time=2.0, images=80, val={"val_accuracy": 0.9})
        assert stats == EpochStats(epoch + 1, 2.0, 2.0, 40.0, 0.1 * ((epoch + 1) * STEPS - 1), val_accuracy=0.9)
    assert [p.epoch for p in saved] == [2, 4, 5]  # every 2 epochs, and the last
    assert [len(p.history) for p in saved] == [2, 4, 5] and shown == e.history
    assert e.train_time_s == 10.0


def test_a_run_resumed_inside_an_epoch_starts_at_its_step_with_what_it_had():
    before = Progress(epoch=1, step=6, loss_sum=3.0, epoch_time_s=1.5,
                      history=(EpochStats(1, 0.5, 2.0, 40.0, None).as_dict(),))
    e, *_ = _epochs(done_before=before)
    assert list(e) == [(1, 6), (2, 0), (3, 0)]
    assert e.first(1) and not e.first(2)
    assert e.loss_before(1, 6) == 3.0 and e.loss_before(2, 0) == 0.0
    t0 = time.perf_counter()
    assert 1.5 <= e.elapsed(6, t0) < 2.5 and e.elapsed(0, t0) < 1.0
    assert [h.epoch for h in e.history] == [1]


def test_a_resumed_epochs_first_log_is_the_mean_of_its_new_steps_only():
    """The steps before the checkpoint summed to 3.0 over 6 steps; the next 2 add 0.2 each: the first logged loss
    (a TensorBoard point) is 0.2, at the run's step 18 (epoch 1 of 10 steps an epoch, step 8)."""
    logged = []
    before = Progress(epoch=1, step=6, loss_sum=3.0, epoch_time_s=1.5, history=())
    e, *_ = _epochs(done_before=before, progress=False, on_log=lambda step, loss, lr: logged.append((step, loss)))
    bar = e.bar(1, 6)
    bar.log(8, 3.0 + 0.4)
    bar.log(10, 3.4 + 1.0)
    bar.close()
    assert logged == [(18, pytest.approx(0.2)), (20, pytest.approx(0.5))]


def test_a_signal_inside_an_epoch_keeps_where_it_is_then_stops():
    e, saved, _, stopped = _epochs()
    STOP.request(signal.SIGTERM)
    with pytest.raises(StopRequested):
        e.stop_inside(0, done=7, loss_sum=3.5, epoch_time=1.0)
    assert saved == [Progress(0, 7, 3.5, 1.0, ())] and stopped == [True]


def test_a_signal_during_an_epochs_last_steps_is_answered_at_its_end_with_a_checkpoint():
    e, saved, shown, stopped = _epochs(epochs=4, every=3)
    STOP.request(signal.SIGINT)
    with pytest.raises(StopRequested):
        e.end(0, loss_sum=1.0, epoch_time=1.0, images=80, val={})
    assert [p.epoch for p in saved] == [1] and len(shown) == 1 and stopped == [True]  # off-cadence, still kept


def test_without_checkpoints_nothing_is_saved():
    e = Epochs("torch", TrainConfig(epochs=2, batch_size=8), STEPS, on_epoch=lambda stats: None)
    for epoch, _ in e:
        e.end(epoch, loss_sum=1.0, epoch_time=1.0, images=80, val={})
    assert [h.epoch for h in e.history] == [1, 2]
