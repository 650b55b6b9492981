"""Warm starts: an exported model's weights set into a freshly built model of either framework, checked first."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
from flax import nnx

import jax_impl.models
import jax_impl.train
import torch_ref.models
import torch_ref.train
from mnist_common.export import ExportError


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A ViT tiny/7 exported by PyTorch and one by JAX, a CNN by PyTorch (random weights: what matters is that
    they arrive)."""
    folder = tmp_path_factory.mktemp("warm")
    torch.manual_seed(3)
    torch_ref.models.save(torch_ref.models.ViT("tiny/7"), folder / "torch", {"trained_with": {"framework": "torch"}})
    jax_impl.models.save(jax_impl.models.ViT("tiny/7", rngs=nnx.Rngs(4)), folder / "jax",
                         {"trained_with": {"framework": "jax"}})
    torch_ref.models.save(torch_ref.models.CNN(), folder / "cnn")
    return folder


@pytest.mark.parametrize("source", ["torch", "jax"])
def test_either_frameworks_export_starts_either_framework_with_its_logits(exported, source, mnist):
    images = mnist.test_images[:16]
    reference = torch_ref.train.predict(torch_ref.models.load(exported / source), images)
    theirs = torch_ref.models.ViT("tiny/7")
    torch_ref.models.load_weights(theirs, exported / source)
    ours = jax_impl.models.ViT("tiny/7", rngs=nnx.Rngs(7))
    config = jax_impl.models.load_weights(ours, exported / source)
    assert config["trained_with"]["framework"] == source
    np.testing.assert_allclose(torch_ref.train.predict(theirs, images), reference, rtol=0, atol=1e-5)
    np.testing.assert_allclose(jax_impl.train.predict(ours, images), reference, rtol=0, atol=1e-5)


def test_a_warm_start_keeps_its_own_seeds_dropout_stream(exported):
    a, b = (jax_impl.models.CNN(rngs=nnx.Rngs(seed)) for seed in (1, 2))
    for model in (a, b):
        jax_impl.models.load_weights(model, exported / "cnn")
    params = [nnx.to_flat_state(nnx.state(m, nnx.Param)) for m in (a, b)]
    assert all((np.asarray(x.get_value()) == np.asarray(y.get_value())).all() for (_, x), (_, y) in zip(*params))
    keys = [nnx.to_flat_state(nnx.state(m, nnx.RngKey)) for m in (a, b)]
    assert keys[0] and any((np.asarray(jax.random.key_data(x.get_value())) !=
                            np.asarray(jax.random.key_data(y.get_value()))).any() for (_, x), (_, y) in zip(*keys))


def test_another_model_or_variant_is_refused_before_anything_changes(exported):
    cnn = torch_ref.models.CNN()
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    with pytest.raises(ExportError, match="an exported vit tiny/7, not the cnn asked for"):
        torch_ref.models.load_weights(cnn, exported / "jax")
    assert all(torch.equal(v, cnn.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ExportError, match="an exported vit tiny/7, not the vit small/4 asked for"):
        jax_impl.models.load_weights(jax_impl.models.ViT("small/4", rngs=nnx.Rngs(0)), exported / "torch")
