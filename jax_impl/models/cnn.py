"""The lab's Part 1 CNN in Flax NNX.

conv1 (3x3, stride 1, pad 1) -> ReLU -> 2x2 max pool
conv2 (3x3, stride 1, pad 1) -> ReLU -> 2x2 max pool
flatten -> fc1 (128) -> ReLU -> dropout(0.5) -> fc2 (10)

Attribute names and parameter shapes mirror ``torch_ref.models.cnn.CNN``
(each in its framework's layout: conv kernels HWIO here, OIHW there; dense
kernels (in, out) here, (out, in) there). The flatten before ``fc1`` is in
NHWC order here and NCHW order in PyTorch; the weight converter handles it.

Initialisation is PyTorch's default, chosen explicitly so that both
frameworks start from the same distribution: weights and biases uniform in
+-1/sqrt(fan_in) (``kaiming_uniform(a=sqrt(5))`` is exactly that).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jax_impl.models.conv import conv_relu_pool
from jax_impl.models.init import torch_default_bias_init, torch_default_kernel_init
from jax_impl.models.layers import Dropout


class CNN(nnx.Module):
    """Small MNIST CNN; takes float NHWC ``[B, 28, 28, 1]``, returns logits ``[B, 10]``."""

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
        rngs: nnx.Rngs,
    ):
        self.pool, self.stride, self.padding = pool, stride, padding
        conv_kw = dict(
            kernel_size=(kernel_size, kernel_size),
            strides=(stride, stride),
            padding=((padding, padding), (padding, padding)),
            kernel_init=torch_default_kernel_init,
            rngs=rngs,
        )
        c1, c2 = channels
        fan_k = kernel_size * kernel_size
        self.conv1 = nnx.Conv(in_channels, c1, bias_init=torch_default_bias_init(fan_k * in_channels), **conv_kw)
        self.conv2 = nnx.Conv(c1, c2, bias_init=torch_default_bias_init(fan_k * c1), **conv_kw)
        side = image_size
        for _ in range(2):  # conv (stride, padding), then pool
            side = (side + 2 * padding - kernel_size) // stride + 1
            side //= pool
        flat = side * side * c2
        self.fc1 = nnx.Linear(flat, hidden, kernel_init=torch_default_kernel_init,
                              bias_init=torch_default_bias_init(flat), rngs=rngs)
        self.dropout = Dropout(dropout, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, num_classes, kernel_init=torch_default_kernel_init,
                              bias_init=torch_default_bias_init(hidden), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self._block(self.conv1, x)  # [B, 14, 14, 32]
        x = self._block(self.conv2, x)  # [B, 7, 7, 64]
        x = x.reshape(x.shape[0], -1)  # [B, 7*7*64], H-W-C order
        x = self.dropout(nnx.relu(self.fc1(x)))  # [B, 128]
        return self.fc2(x)  # [B, 10]

    def _block(self, conv: nnx.Conv, x: jax.Array) -> jax.Array:
        """``max_pool(relu(conv(x)))``, the same maths as ``nnx.Conv`` then ReLU then pooling, written
        for XLA CPU's sake (``jax_impl.models.conv``); the parameters stay those of ``conv``."""
        return conv_relu_pool(x, conv.kernel[...], conv.bias[...], stride=self.stride, padding=self.padding,
                              window=self.pool)


def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars (``nnx.Param`` leaves)."""
    return int(sum(jnp.size(p) for p in jax.tree.leaves(nnx.state(model, nnx.Param))))
