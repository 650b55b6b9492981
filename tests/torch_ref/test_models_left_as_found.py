"""Every public function of torch_ref that takes a model leaves it as it found it: its mode, its parameters, its
memory format and the random streams, except what training is for (fit changes the parameters and draws from
the dropout stream, and keeps the mode and memory format)."""

from __future__ import annotations

import pytest
import torch

from mnist_common import TrainConfig
from torch_ref import models, train


def _snapshot(model):
    return ([m.training for m in model.modules()], {k: v.clone() for k, v in model.state_dict().items()},
            [p.is_contiguous() for p in model.parameters()], torch.get_rng_state())


def _assert_same(before, after):
    assert before[0] == after[0], "mode changed"
    assert before[2] == after[2], "memory format changed"
    for key, value in before[1].items():
        assert torch.equal(value, after[1][key]), key
    assert torch.equal(before[3], after[3]), "the random stream moved"


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("call", ["evaluate", "predict", "save", "count_params"])
def test_a_call_leaves_the_model_as_it_was(mnist, tmp_path, mode, call):
    torch.manual_seed(0)
    model = models.CNN()
    getattr(model, mode)()
    before = _snapshot(model)
    images, labels = mnist.test_images[:64], mnist.test_labels[:64]
    {"evaluate": lambda: train.evaluate(model, images, labels, batch_size=32),
     "predict": lambda: train.predict(model, images, batch_size=32),
     "save": lambda: models.save(model, tmp_path / "again"),
     "count_params": lambda: models.count_params(model)}[call]()
    _assert_same(before, _snapshot(model))


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fit_keeps_the_mode_and_memory_format_it_was_given(mnist, mode, channels_last):
    torch.manual_seed(0)
    model = models.CNN()
    getattr(model, mode)()
    before = _snapshot(model)
    train.fit(model, mnist.train_images[:128], mnist.train_labels[:128],
              TrainConfig(epochs=1, batch_size=64, channels_last=channels_last), progress=False)
    after = _snapshot(model)
    assert after[0] == before[0] and after[2] == before[2]
    assert any(not torch.equal(v, after[1][k]) for k, v in before[1].items())  # the parameters did train


def test_fit_that_fails_or_finds_channels_last_gives_the_model_back_as_it_came(mnist):
    """An error mid-training (a diverged loss) and a model that was channels-last already: both come back as they
    came, mode and memory format."""
    torch.manual_seed(0)
    model = models.CNN().eval()
    with pytest.raises(FloatingPointError):
        train.fit(model, mnist.train_images[:256], mnist.train_labels[:256],
                  TrainConfig(epochs=1, batch_size=64, optimizer="sgd", lr=1e30), progress=False, log_every=1)
    assert not any(m.training for m in model.modules())
    model = models.CNN().to(memory_format=torch.channels_last)
    before = _snapshot(model)
    train.fit(model, mnist.train_images[:128], mnist.train_labels[:128],
              TrainConfig(epochs=1, batch_size=64, channels_last=True), progress=False)
    assert _snapshot(model)[2] == before[2]  # still channels-last
