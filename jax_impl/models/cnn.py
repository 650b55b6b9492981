"""The lab's CNN in Flax NNX: two convolution blocks and two dense layers, the twin of ``torch_ref.models.CNN``.

conv1 (3x3, stride 1, pad 1) -> ReLU -> 2x2 max pool
conv2 (3x3, stride 1, pad 1) -> ReLU -> 2x2 max pool
flatten -> fc1 (128) -> ReLU -> dropout(0.5) -> fc2 (10)

Attribute names and parameter shapes mirror the PyTorch twin, each in its
framework's layout (conv kernels HWIO here, OIHW there; dense kernels
(in, out) here, (out, in) there); the flatten is in NHWC order here, NCHW
there, and ``parity.convert`` handles both. Weights start from PyTorch's
default distribution (uniform in +-1/sqrt(fan_in)), so both frameworks train
from the same kind of start.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jax_impl import kernels as kernel_choice
from jax_impl.kernels.conv import conv_relu_pool
from jax_impl.models.init import torch_default_bias_init, torch_default_kernel_init


class CNN(nnx.Module):
    """Small MNIST CNN: float NHWC ``[B, 28, 28, 1]`` -> logits ``[B, 10]``.

    ``kernels``: ``"stock"`` runs the Flax layers below; ``"tuned"`` runs the same
    parameters through ``jax_impl.kernels`` (equal logits and gradients, faster on
    XLA CPU); ``"auto"`` is tuned on the CPU backend, stock elsewhere. The resolved
    choice is ``model.kernels``. ``dtype`` is the computation's (``jnp.bfloat16``:
    mixed precision; None: the parameters' and inputs' own); parameters are float32.
    """

    def __init__(
        self,
        *,
        channels: tuple[int, int] = (32, 64),
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        pool: int = 2,
        hidden: int = 128,
        dropout: float = 0.5,
        num_classes: int = 10,
        image_size: int = 28,
        in_channels: int = 1,
        kernels: str = "auto",
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        self.kernels = kernel_choice.resolve(kernels)
        self.dtype = dtype
        self.num_classes, self.image_size = num_classes, image_size
        layers = kernel_choice.layers(self.kernels)
        self.pool, self.stride, self.padding = pool, stride, padding
        c1, c2 = channels
        fan_k = kernel_size * kernel_size

        def conv(c_in: int, c_out: int) -> nnx.Conv:
            return nnx.Conv(c_in, c_out, kernel_size=(kernel_size, kernel_size), strides=(stride, stride),
                            padding=((padding, padding), (padding, padding)), kernel_init=torch_default_kernel_init,
                            bias_init=torch_default_bias_init(fan_k * c_in), dtype=dtype, rngs=rngs)

        def linear(d_in: int, d_out: int) -> nnx.Linear:
            return nnx.Linear(d_in, d_out, kernel_init=torch_default_kernel_init,
                              bias_init=torch_default_bias_init(d_in), dtype=dtype, rngs=rngs)

        self.conv1 = conv(in_channels, c1)
        self.conv2 = conv(c1, c2)
        side = image_size
        for _ in range(2):  # conv (stride, padding), then pool
            side = (side + 2 * padding - kernel_size) // stride + 1
            side //= pool
        self.fc1 = linear(side * side * c2, hidden)
        self.dropout = layers.Dropout(dropout, rngs=rngs)
        self.fc2 = linear(hidden, num_classes)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.block(self.conv1, x)  # [B, 14, 14, 32]
        x = self.block(self.conv2, x)  # [B, 7, 7, 64]
        x = x.reshape(x.shape[0], -1)  # [B, 7*7*64], H-W-C order
        x = self.dropout(nnx.relu(self.fc1(x)))  # [B, 128]
        return self.fc2(x)  # [B, 10]

    def block(self, conv: nnx.Conv, x: jax.Array) -> jax.Array:
        """``conv`` -> ReLU -> max pool: Flax's layers, or with ``kernels="tuned"`` the same parameters, in the
        convolution's own precision, through ``jax_impl.kernels.conv.conv_relu_pool`` (one fused loop on XLA CPU)."""
        if self.kernels == "tuned":
            x, kernel, bias = conv.promote_dtype((x, conv.kernel[...], conv.bias[...]), dtype=conv.dtype)
            return conv_relu_pool(x, kernel, bias, stride=self.stride, padding=self.padding, window=self.pool)
        window = (self.pool, self.pool)
        return nnx.max_pool(nnx.relu(conv(x)), window, strides=window)


def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars (``nnx.Param`` leaves, those of ``model.trainable`` where a model says); a model
    built abstractly (``nnx.eval_shape``) is counted too."""
    leaves = jax.tree.leaves(nnx.state(model, getattr(model, "trainable", nnx.Param)))
    return sum(math.prod(p.shape) for p in leaves)
