"""The Flax CNN: shapes, parameters, dropout modes, training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from harness.data import train_val_split
from jax_impl import train
from jax_impl.models import CNN, count_params
from jax_impl.optim import make_optimizer
from mnist_common import TrainConfig, epoch_orders


def test_forward_shape_and_param_count():
    model = CNN(rngs=nnx.Rngs(0))
    logits = model(jnp.zeros((3, 28, 28, 1)))
    assert logits.shape == (3, 10) and logits.dtype == jnp.float32
    # conv1 1*32*9+32, conv2 32*64*9+64, fc1 3136*128+128, fc2 128*10+10
    assert count_params(model) == 320 + 18496 + 401536 + 1290


def test_initialisation_is_pytorchs_uniform_fan_in():
    model = CNN(rngs=nnx.Rngs(0))
    for layer, fan_in in ((model.conv1, 9), (model.conv2, 288), (model.fc1, 3136), (model.fc2, 128)):
        bound = 1 / np.sqrt(fan_in)
        for p in (layer.kernel[...], layer.bias[...]):
            assert float(jnp.abs(p).max()) <= bound
            assert float(jnp.abs(p).max()) > 0.8 * bound  # really uniform over the whole range
    assert not np.array_equal(CNN(rngs=nnx.Rngs(1)).fc1.kernel[...], model.fc1.kernel[...])


def test_dropout_is_on_in_training_and_off_in_evaluation(mnist):
    model = CNN(rngs=nnx.Rngs(0))
    x = train.preprocess(mnist.test_images[:8])
    model.train()
    assert not np.allclose(model(x), model(x))  # fresh dropout masks
    a = train.predict(model, mnist.test_images[:8])
    b = train.predict(model, mnist.test_images[:8])
    np.testing.assert_array_equal(a, b)
    model.eval()
    np.testing.assert_allclose(a, model(x), rtol=1e-5, atol=1e-5)


def test_evaluate_pads_ragged_batches(mnist):
    model = CNN(rngs=nnx.Rngs(0))
    images, labels = mnist.test_images[:50], mnist.test_labels[:50]
    whole = train.evaluate(model, images, labels, batch_size=50)
    ragged = train.evaluate(model, images, labels, batch_size=7)
    assert ragged["logits"].shape == (50, 10)
    np.testing.assert_allclose(ragged["logits"], whole["logits"], rtol=1e-5, atol=1e-5)
    assert ragged["loss"] == pytest.approx(whole["loss"], rel=1e-5)


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-3), ("sgd", 0.05)])
def test_training_steps_lower_the_loss(mnist, optimizer, lr):
    model = CNN(rngs=nnx.Rngs(0))
    images, labels = mnist.train_images[:256], mnist.train_labels[:256]
    before = train.evaluate(model, images, labels)["loss"]
    result = train.fit(model, images, labels, TrainConfig(epochs=5, batch_size=64, optimizer=optimizer, lr=lr),
                       progress=False)
    after = train.evaluate(model, images, labels)["loss"]
    assert after < 0.7 * before, (before, after)
    assert len(result.history) == 5 and result.steps_per_epoch == 4
    assert result.compile_time_s > 0 and result.train_time_s > 0


def test_short_run_reaches_nontrivial_accuracy(mnist):
    split = train_val_split(60000, val_size=1000, train_size=4000)
    model = CNN(rngs=nnx.Rngs(0))
    result = train.fit(
        model, mnist.train_images[split.train], mnist.train_labels[split.train],
        TrainConfig(epochs=3, batch_size=128, schedule="cosine"),
        val_images=mnist.train_images[split.val], val_labels=mnist.train_labels[split.val], progress=False,
    )
    test = train.evaluate(model, mnist.test_images[:2000], mnist.test_labels[:2000])
    assert test["accuracy"] >= 0.9, test["accuracy"]
    assert result.history[-1].val_accuracy >= 0.9
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_several_steps_per_call_are_the_same_updates(mnist):
    """steps_per_call runs the same updates (dropout and shifts included) in fewer compiled calls."""
    images, labels = mnist.train_images[:320], mnist.train_labels[:320]  # 10 steps of 32: 4 + 4 + 2 per epoch
    orders = epoch_orders(320, 2, 0)
    shifts = np.random.default_rng(0).integers(-2, 3, size=(2, 320, 2))
    results, params = [], []
    for per_call in (1, 4):
        model = CNN(rngs=nnx.Rngs(0))
        config = TrainConfig(epochs=2, batch_size=32, schedule="cosine", steps_per_call=per_call)
        results.append(train.fit(model, images, labels, config, orders=orders, shifts=shifts, log_every=3,
                                 progress=False))
        params.append(jax.tree.leaves(nnx.state(model, nnx.Param)))
    one, four = results
    assert (one.steps_per_call, four.steps_per_call) == (1, 4)
    for a, b in zip(one.history, four.history):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
    for a, b in zip(*params):  # rounding differs inside the loop; one step fewer per epoch moved them by 4e-3
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5)
    capped = train.fit(CNN(rngs=nnx.Rngs(0)), images, labels, TrainConfig(batch_size=32, steps_per_call=100),
                       progress=False)
    assert capped.steps_per_call == 10  # at most one epoch per call


def test_non_finite_loss_stops_training(mnist):
    model = CNN(rngs=nnx.Rngs(0))
    with pytest.raises(FloatingPointError, match="non-finite"):
        train.fit(model, mnist.train_images[:256], mnist.train_labels[:256],
                  TrainConfig(batch_size=64, optimizer="sgd", lr=1e12), log_every=1, progress=False)


def test_unknown_optimizer_and_schedule_are_rejected():
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("rmsprop", 1e-3)
    with pytest.raises(ValueError, match="unknown schedule"):
        make_optimizer("adam", 1e-3, schedule="step")
    with pytest.raises(ValueError, match="weight decay needs adamw"):
        make_optimizer("adam", 1e-3, weight_decay=0.1)
