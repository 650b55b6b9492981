"""The Flax ports of torchvision's VGG16 and AlexNet: pooling and resizing as PyTorch does them, shapes, freezing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from flax import nnx

from jax_impl.models import VGG16, AlexNet, MNISTClassifier, count_params
from jax_impl.models.imagenet import adaptive_avg_pool, mnist_to_rgb
from mnist_common.architectures import IMAGENET_MEAN, IMAGENET_STD


@pytest.mark.parametrize("side, out", [(1, 7), (3, 7), (5, 7), (7, 7), (10, 7), (13, 7), (14, 7), (15, 7), (1, 6),
                                       (3, 6), (6, 6), (8, 6), (13, 6)])
def test_adaptive_avg_pool_equals_pytorch_uneven_windows_included(side, out):
    x = np.random.default_rng(side * 10 + out).standard_normal((2, side, side + 2, 5)).astype(np.float32)
    ours = np.asarray(adaptive_avg_pool(jnp.asarray(x), (out, out)))
    theirs = F.adaptive_avg_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), (out, out)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)


@pytest.mark.parametrize("size", [20, 28, 32, 63, 224])
def test_mnist_to_rgb_resizes_as_pytorch_bilinear_does(size):
    x = np.random.default_rng(size).standard_normal((3, 28, 28, 1)).astype(np.float32)
    ours = np.asarray(mnist_to_rgb(jnp.asarray(x), size))
    t = torch.from_numpy(x).permute(0, 3, 1, 2) * 0.3081 + 0.1307
    if size != 28:
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    t = (t.expand(-1, 3, -1, -1) - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD).view(1, 3, 1, 1)
    np.testing.assert_allclose(ours, t.permute(0, 2, 3, 1).numpy(), rtol=0, atol=5e-6)  # float32 rounding


def test_the_adaptation_uses_the_weights_own_statistics():
    for weights in (torchvision.models.VGG16_Weights.IMAGENET1K_V1, torchvision.models.AlexNet_Weights.IMAGENET1K_V1):
        transforms = weights.transforms()
        assert tuple(transforms.mean) == IMAGENET_MEAN and tuple(transforms.std) == IMAGENET_STD


@pytest.mark.parametrize("kind, side, params", [(VGG16, 32, 134_301_514), (AlexNet, 63, 57_044_810)])
def test_ports_have_torchvisions_shapes(kind, side, params):
    """Built abstractly (shapes, no values: VGG16's 134 M weights are not drawn for this)."""
    model = nnx.eval_shape(lambda: MNISTClassifier(kind(num_classes=10, rngs=nnx.Rngs(0)), kind.__name__.lower(), side))
    graphdef, state = nnx.split(model)
    images = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
    assert jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, images).shape == (2, 10)
    assert count_params(model) == params  # the same as torchvision's with a 10-class head


def test_freeze_features_trains_the_classifier_only(mnist):
    from jax_impl.train import fit
    from mnist_common import TrainConfig
    from parity.convert import flax_params

    model = MNISTClassifier(AlexNet(num_classes=10, rngs=nnx.Rngs(0)), "alexnet", 63, freeze_features=True)
    before = flax_params(model)
    fit(model, mnist.train_images[:64], mnist.train_labels[:64], TrainConfig(epochs=1, batch_size=32, lr=1e-3),
        progress=False)
    after = flax_params(model)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed == {k for k in before if k.startswith("net.classifier.")}
