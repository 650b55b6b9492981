"""The PyTorch CNN: shapes, parameters, dropout modes, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.data import train_val_split
from mnist_common import MNIST_MEAN, MNIST_STD, TrainConfig
from torch_ref import train
from torch_ref.models import CNN, count_params
from torch_ref.optim import make_optimizer


def test_forward_shape_and_param_count():
    logits = CNN()(torch.zeros(3, 1, 28, 28))
    assert logits.shape == (3, 10) and logits.dtype == torch.float32
    assert count_params(CNN()) == 320 + 18496 + 401536 + 1290


def test_preprocess_turns_nhwc_uint8_into_normalised_nchw(mnist):
    x = train.preprocess(mnist.test_images[:2], torch.device("cpu"))
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32
    expected = (mnist.test_images[1, 10, 5, 0] / 255.0 - MNIST_MEAN) / MNIST_STD
    assert x[1, 0, 10, 5].item() == pytest.approx(expected, rel=1e-6)


def test_dropout_is_on_in_training_and_off_in_evaluation(mnist):
    torch.manual_seed(0)
    model = CNN()
    x = train.preprocess(mnist.test_images[:8], torch.device("cpu"))
    model.train()
    assert not torch.allclose(model(x), model(x))
    a = train.predict(model, mnist.test_images[:8])
    np.testing.assert_array_equal(a, train.predict(model, mnist.test_images[:8]))
    assert model.training  # predict restores the mode it found


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-3), ("sgd", 0.05)])
def test_training_steps_lower_the_loss(mnist, optimizer, lr):
    torch.manual_seed(0)
    model = CNN()
    images, labels = mnist.train_images[:256], mnist.train_labels[:256]
    before = train.evaluate(model, images, labels)["loss"]
    result = train.fit(model, images, labels, TrainConfig(epochs=5, batch_size=64, optimizer=optimizer, lr=lr),
                       progress=False)
    after = train.evaluate(model, images, labels)["loss"]
    assert after < 0.7 * before, (before, after)
    assert len(result.history) == 5 and result.steps_per_epoch == 4
    assert result.compile_time_s == 0.0 and result.train_time_s > 0


def test_short_run_reaches_nontrivial_accuracy(mnist):
    split = train_val_split(60000, val_size=1000, train_size=4000)
    torch.manual_seed(0)
    model = CNN()
    result = train.fit(
        model, mnist.train_images[split.train], mnist.train_labels[split.train],
        TrainConfig(epochs=3, batch_size=128, schedule="cosine"),
        val_images=mnist.train_images[split.val], val_labels=mnist.train_labels[split.val], progress=False,
    )
    test = train.evaluate(model, mnist.test_images[:2000], mnist.test_labels[:2000])
    assert test["accuracy"] >= 0.9, test["accuracy"]
    assert result.history[-1].val_accuracy >= 0.9


def test_non_finite_loss_stops_training(mnist):
    torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match="non-finite"):
        train.fit(CNN(), mnist.train_images[:256], mnist.train_labels[:256],
                  TrainConfig(batch_size=64, optimizer="sgd", lr=1e12), log_every=1, progress=False)


def test_unknown_optimizer_and_schedule_are_rejected():
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("rmsprop", CNN(), 1e-3)
    with pytest.raises(ValueError, match="unknown schedule"):
        make_optimizer("adam", CNN(), 1e-3, schedule="step")
    with pytest.raises(ValueError, match="weight decay needs adamw"):
        make_optimizer("adam", CNN(), 1e-3, weight_decay=0.1)


def test_a_callers_optimizer_factory_is_used_and_its_rate_recorded(mnist):
    import functools

    images, labels = mnist.train_images[:256], mnist.train_labels[:256]
    config = TrainConfig(epochs=2, batch_size=64, optimizer="sgd", lr=0.05, seed=1)
    models = []
    for factory in (None, functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9)):
        torch.manual_seed(0)
        models.append(CNN(dropout=0.0))
        result = train.fit(models[-1], images, labels, config, optimizer=factory, progress=False)
    for a, b in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # the config's SGD and the caller's: the same updates
    assert result.history[-1].lr == 0.05
    with pytest.raises(ValueError, match="256 images but 10 labels"):
        train.fit(CNN(), images, labels[:10], config)


def test_a_signal_stops_at_a_step_and_resuming_gives_the_same_model(mnist, tmp_path):
    """Stopped by a signal one step into epoch 2, then resumed from that checkpoint (model, optimizer, scheduler,
    random generator): bit for bit the run that was never stopped (PyTorch on a CPU is deterministic)."""
    import signal

    from mnist_common.checkpointing import Checkpointing
    from mnist_common.interrupt import STOP, StopRequested

    images, labels = mnist.train_images[:256], mnist.train_labels[:256]
    config = TrainConfig(epochs=2, batch_size=64, seed=2, schedule="cosine")
    torch.manual_seed(0)
    whole = CNN()
    expected = train.fit(whole, images, labels, config, progress=False)
    torch.manual_seed(0)
    stopped = CNN()
    try:
        with pytest.raises(StopRequested):
            train.fit(stopped, images, labels, config, progress=False,
                      checkpointing=Checkpointing(tmp_path / "ckpt", identity={"test": 1}),
                      on_epoch=lambda stats: STOP.request(signal.SIGTERM))
    finally:
        STOP.clear()
    torch.manual_seed(123)  # another generator state and other weights: both must come from the checkpoint
    resumed = CNN()
    result = train.fit(resumed, images, labels, config, progress=False,
                       checkpointing=Checkpointing(tmp_path / "ckpt", resume=True, identity={"test": 1}))
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert [h.train_loss for h in result.history] == [h.train_loss for h in expected.history]
    files = sorted((tmp_path / "ckpt").glob("checkpoint-*.pt"))
    assert [f.name for f in files] == ["checkpoint-000000004.pt", "checkpoint-000000005.pt", "checkpoint-000000008.pt"]
    files[-1].write_bytes(b"damaged")  # the newest damaged: resuming falls back to the one before, saying so
    torch.manual_seed(7)
    again = CNN()
    train.fit(again, images, labels, config, progress=False,
              checkpointing=Checkpointing(tmp_path / "ckpt", resume=True, identity={"test": 1}))
    for a, b in zip(whole.parameters(), again.parameters()):
        assert torch.equal(a, b)
