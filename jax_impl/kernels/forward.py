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
    cast = (lambda a: a.astype(model.dtype)) if model.dtype is not None else (lambda a: a)  # noqa: E731
    x = cast(x)
    for conv in (model.conv1, model.conv2):  # [B, 14, 14, 32], then [B, 7, 7, 64]
        x = conv_relu_pool(x, cast(conv.kernel[...]), cast(conv.bias[...]), stride=model.stride,
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
    kernel = jnp.concatenate([attn.q.kernel[...], attn.k.kernel[...], attn.v.kernel[...]], axis=1)  # [D, 3D]
    bias = jnp.concatenate([attn.q.bias[...], attn.k.bias[...], attn.v.bias[...]])
    x = x.reshape(b * t, d)
    if attn.q.dtype is not None:  # the products' precision (bfloat16), else the inputs' own
        x, kernel, bias = (a.astype(attn.q.dtype) for a in (x, kernel, bias))
    out = x @ kernel + bias
    out = out.reshape(b, t, 3, h, d // h)  # [B, T, 3, H, D/H]
    return tuple(out[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # each [B, H, T, D/H]
