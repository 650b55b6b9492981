"""jax_impl.train.fit's contract: orders drawn from the seed when not given, a caller's optax
transformation, and clear errors for tables that do not fit."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from jax_impl import train
from jax_impl.models import CNN
from mnist_common import FitResult, TrainConfig, epoch_orders


def _params(model):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def test_orders_come_from_the_seed_and_a_callers_optimizer_is_used_as_is(mnist):
    images, labels = mnist.train_images[:256], mnist.train_labels[:256]
    config = TrainConfig(epochs=2, batch_size=64, optimizer="sgd", lr=0.05, seed=3)
    runs = {}
    for name, kwargs in {"drawn": {}, "given": {"orders": epoch_orders(256, 2, 3)},
                         "optax": {"optimizer": optax.sgd(0.05, momentum=0.9)}}.items():
        model = CNN(dropout=0.0, rngs=nnx.Rngs(0))
        runs[name] = (train.fit(model, images, labels, config, progress=False, **kwargs), _params(model))
    for a, b, c in zip(runs["drawn"][1], runs["given"][1], runs["optax"][1]):
        np.testing.assert_array_equal(a, b)  # fit drew exactly epoch_orders(N, epochs, seed)
        np.testing.assert_allclose(c, a, rtol=0, atol=1e-6)  # the same updates, from the caller's transformation
    result = runs["drawn"][0]
    assert isinstance(result, FitResult) and result.history[-1].lr == 0.05 and result.images_per_epoch == 256
    assert runs["optax"][0].history[-1].lr is None  # a caller's schedule is not read back
    other = CNN(dropout=0.0, rngs=nnx.Rngs(0))
    train.fit(other, images, labels, config.replace(seed=4), progress=False)
    assert not np.array_equal(_params(other)[0], runs["drawn"][1][0])  # another seed, another order


def test_tables_that_do_not_fit_are_refused(mnist):
    images, labels = mnist.train_images[:128], mnist.train_labels[:128]
    model = CNN(rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"orders must be \[epochs, N\] = \[2, 128\]"):
        train.fit(model, images, labels, TrainConfig(epochs=2, batch_size=64), orders=epoch_orders(128, 1, 0))
    with pytest.raises(ValueError, match="128 images but 100 labels"):
        train.fit(model, images, labels[:100], TrainConfig(batch_size=64))
    with pytest.raises(ValueError, match="larger than the 128 training images"):
        train.fit(model, images, labels, TrainConfig(batch_size=256))


def test_a_signal_stops_at_a_step_and_resuming_gives_the_same_model(mnist, tmp_path):
    """Stopped by a signal one step into epoch 2 (a checkpoint there), then resumed: bit for bit the parameters
    and history of the run that was never stopped (XLA CPU is deterministic)."""
    import signal

    from mnist_common.checkpointing import Checkpointing
    from mnist_common.interrupt import STOP, StopRequested

    images, labels = mnist.train_images[:256], mnist.train_labels[:256]
    config = TrainConfig(epochs=2, batch_size=64, seed=2)
    whole = CNN(rngs=nnx.Rngs(0))
    expected = train.fit(whole, images, labels, config, progress=False)
    plan = Checkpointing(tmp_path / "ckpt", identity={"test": 1})
    stopped = CNN(rngs=nnx.Rngs(0))
    try:
        with pytest.raises(StopRequested):
            train.fit(stopped, images, labels, config, progress=False, checkpointing=plan,
                      on_epoch=lambda stats: STOP.request(signal.SIGINT))  # after epoch 1: stop at the next step
    finally:
        STOP.clear()
    resumed = CNN(rngs=nnx.Rngs(5))  # other initial weights: everything must come from the checkpoint
    result = train.fit(resumed, images, labels, config, progress=False,
                       checkpointing=Checkpointing(tmp_path / "ckpt", resume=True, identity={"test": 1}))
    for a, b in zip(_params(whole), _params(resumed)):
        np.testing.assert_array_equal(a, b)
    assert [h.train_loss for h in result.history] == [h.train_loss for h in expected.history]
    from mnist_common.checkpointing import CheckpointError

    with pytest.raises(CheckpointError, match="its test is 1, this run's is 2"):
        train.fit(CNN(rngs=nnx.Rngs(0)), images, labels, config, progress=False,
                  checkpointing=Checkpointing(tmp_path / "ckpt", resume=True, identity={"test": 2}))


def test_only_arrays_the_caller_holds_or_repeats_are_copied_before_donation():
    import jax.numpy as jnp

    from jax_impl.train import _donatable

    held, fresh = jnp.ones(3), jnp.zeros(2)
    state = {"model": held, "mu": fresh, "again": fresh, "nu": jnp.zeros(2)}
    out = _donatable(state, keep={"w": held})
    assert out["nu"] is state["nu"]  # fit's own: donated as it is
    assert out["model"] is not held  # the caller's: a copy
    assert [out[k] is fresh for k in ("again", "mu")] == [True, False]  # one array twice: the second a copy
    np.testing.assert_array_equal(out["model"], held)
    np.testing.assert_array_equal(out["mu"], fresh)
