"""What the ported torchvision convnets share: PyTorch's adaptive average pooling, and MNIST adapted to their input.

:class:`MNISTClassifier` is the Flax twin of ``torch_ref.finetune.MNISTClassifier``:
it takes MNIST as every model here does (normalised, ``[B, 28, 28, 1]`` NHWC),
undoes the normalisation, resizes bilinearly to ``image_size`` exactly as
``F.interpolate(mode="bilinear", align_corners=False)`` does (half-pixel centres,
no antialiasing), repeats the grey channel as RGB, normalises with the weights'
mean and std, and runs the network (``VGG16`` or ``AlexNet``). The resize is
done per batch on the device, as on the PyTorch side.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mnist_common import MNIST_MEAN, MNIST_STD
from mnist_common.architectures import IMAGENET_MEAN, IMAGENET_STD

#: Width of the two hidden dense layers of both VGG16's and AlexNet's classifiers.
HIDDEN = 4096


def classifier_layers(linear, d_in: int, num_classes: int) -> nnx.List:
    """The three dense layers of VGG16's and AlexNet's ``classifier``: ``d_in`` -> 4096 -> 4096 -> ``num_classes``,
    each made by ``linear(d_in, d_out)`` (each model its own initialisation)."""
    return nnx.List([linear(d_in, HIDDEN), linear(HIDDEN, HIDDEN), linear(HIDDEN, num_classes)])


def _window_matrix(size: int, out: int) -> np.ndarray:
    """``[out, size]``: row i averages input rows ``floor(i*size/out) .. ceil((i+1)*size/out) - 1``, PyTorch's windows."""
    m = np.zeros((out, size), np.float32)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
    """``[B, H, W, C]`` -> ``[B, oh, ow, C]``: PyTorch's ``adaptive_avg_pool2d`` for any H, W (uneven windows and
    windows that overlap or repeat a pixel included), as two small averaging matrices."""
    (oh, ow), (h, w) = output_size, x.shape[1:3]
    if (h, w) == (oh, ow):
        return x
    rows, cols = jnp.asarray(_window_matrix(h, oh), x.dtype), jnp.asarray(_window_matrix(w, ow), x.dtype)
    exact = jax.lax.Precision.HIGHEST  # an average, not a learnt product: no TF32 on a GPU
    x = jnp.einsum("oh,bhwc->bowc", rows, x, precision=exact)  # [B, oh, W, C]
    return jnp.einsum("pw,bowc->bopc", cols, x, precision=exact)  # [B, oh, ow, C]


def mnist_to_rgb(x: jax.Array, image_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> jax.Array:
    """MNIST-normalised ``[B, 28, 28, 1]`` -> ``[B, S, S, 3]`` normalised with ``mean``/``std`` (RGB)."""
    x = x * MNIST_STD + MNIST_MEAN  # back to pixel values in [0, 1]
    b, h, w, _ = x.shape
    if (h, w) != (image_size, image_size):
        x = jax.image.resize(x, (b, image_size, image_size, 1), method="bilinear", antialias=False)
    x = jnp.broadcast_to(x, (b, image_size, image_size, 3))  # grey as RGB
    return (x - jnp.asarray(mean, x.dtype)) / jnp.asarray(std, x.dtype)


class MNISTClassifier(nnx.Module):
    """A ported torchvision convnet (``net``) that reads MNIST: ``[B, 28, 28, 1]`` -> logits ``[B, classes]``.

    ``freeze_features``: only the classifier layers train (``trainable``, the
    filter ``jax_impl.train.fit`` hands the optimizer). ``weights_info`` (set by
    whoever loads weights) says what the network started from.
    """

    def __init__(self, net: nnx.Module, arch: str, image_size: int, *, freeze_features: bool = False):
        self.net, self.arch, self.image_size = net, arch, image_size
        self.num_classes, self.dtype, self.kernels = net.num_classes, net.dtype, net.kernels
        self.freeze_features = freeze_features
        self.weights_info = None

    @property
    def trainable(self):
        """The parameters an optimizer updates: all, or with ``freeze_features`` the classifier's."""
        return nnx.All(nnx.Param, nnx.PathContains("classifier")) if self.freeze_features else nnx.Param

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.net(mnist_to_rgb(x, self.image_size))  # [B, S, S, 3] -> [B, classes]
