"""Every public function of jax_impl that takes a model leaves it as it found it: its mode (dropout on or off),
its parameters and its random streams, except what training is for (fit changes the parameters and draws from
the dropout stream, and keeps the mode)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

from jax_impl import models, train
from mnist_common import TrainConfig


def _snapshot(model):
    modes = tuple(getattr(m, "deterministic", None) for _, m in nnx.iter_modules(model))
    arrays = [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
              for x in jax.tree.leaves(nnx.state(model))]
    return modes, arrays


def _assert_same(before, after):
    assert before[0] == after[0], "mode changed"
    for a, b in zip(before[1], after[1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cnn")
    models.save(models.CNN(rngs=nnx.Rngs(0)), folder)
    return folder


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("call", ["evaluate", "predict", "save", "count_params"])
def test_a_call_leaves_the_model_as_it_was(exported, mnist, tmp_path, mode, call):
    model = models.load(exported)  # evaluation mode, as a loaded model is
    getattr(model, mode)()
    before = _snapshot(model)
    images, labels = mnist.test_images[:64], mnist.test_labels[:64]
    {"evaluate": lambda: train.evaluate(model, images, labels, batch_size=32),
     "predict": lambda: train.predict(model, images, batch_size=32),
     "save": lambda: models.save(model, tmp_path / "again"),
     "count_params": lambda: models.count_params(model)}[call]()
    _assert_same(before, _snapshot(model))


def test_a_loaded_model_answers_the_same_twice_after_evaluate(exported, mnist):
    model = models.load(exported)
    x = train.preprocess(mnist.test_images[:16])
    train.evaluate(model, mnist.test_images[:64], mnist.test_labels[:64])
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))  # dropout still off


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_fit_keeps_the_mode_it_was_given(mnist, mode):
    model = models.CNN(rngs=nnx.Rngs(0))
    getattr(model, mode)()
    before = _snapshot(model)
    train.fit(model, mnist.train_images[:128], mnist.train_labels[:128], TrainConfig(epochs=1, batch_size=64),
              progress=False)
    after = _snapshot(model)
    assert after[0] == before[0]
    assert any(not np.array_equal(a, b) for a, b in zip(before[1], after[1]))  # the parameters did train
