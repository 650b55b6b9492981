"""The models' forward passes where a tuned kernel replaces more than one plain layer.

:func:`cnn` is ``jax_impl.models.CNN``'s forward pass with each convolution
block as :func:`~jax_impl.kernels.conv.conv_relu_pool`; :func:`qkv` is the
ViT attention's three projections as one product. Both read the models' own
parameters, so a tuned model and a stock one share weights, checkpoints and
the weight converter.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jax_impl.kernels.conv import conv_relu_pool


def cnn(model, x: jax.Array) -> jax.Array:
    """``model(x)`` for a ``CNN``: NHWC ``[B, 28, 28, 1]`` -> logits ``[B, 10]``."""
    dtype = model.dtype
    x = x.astype(dtype)
    for conv in (model.conv1, model.conv2):  # [B, 14, 14, 32], then [B, 7, 7, 64]
        x = conv_relu_pool(x, conv.kernel[...].astype(dtype), conv.bias[...].astype(dtype), stride=model.stride,
                           padding=model.padding, window=model.pool)
    x = x.reshape(x.shape[0], -1)  # [B, 7*7*64], H-W-C order
    x = model.dropout(nnx.relu(model.fc1(x)))  # [B, 128]
    return model.fc2(x)  # [B, 10]


def qkv(attn, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``attn.q(x), attn.k(x), attn.v(x)`` for tokens ``[B, T, D]``, each split into heads ``[B, H, T, D/H]``.

    One ``[B*T, D] x [D, 3D]`` product with the three kernels concatenated at call
    time (the parameters stay separate, as in PyTorch): one pass over the tokens instead of three.
    """
    b, t, d = x.shape
    h = attn.heads
    dtype = attn.q.dtype  # the products' precision
    kernel = jnp.concatenate([attn.q.kernel[...], attn.k.kernel[...], attn.v.kernel[...]], axis=1)  # [D, 3D]
    bias = jnp.concatenate([attn.q.bias[...], attn.k.bias[...], attn.v.bias[...]])
    out = x.reshape(b * t, d).astype(dtype) @ kernel.astype(dtype) + bias.astype(dtype)
    out = out.reshape(b, t, 3, h, d // h)  # [B, T, 3, H, D/H]
    return tuple(out[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # each [B, H, T, D/H]
