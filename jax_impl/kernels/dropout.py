"""Dropout whose mask comes from 16-bit random numbers: two per 32-bit word drawn.

``nnx.Dropout`` draws one float32 uniform per element; on XLA CPU the ViT's
masks were then a large share of its step (docs/performance.md, "Dropout").
Here the drop probability is ``round(rate * 65536) / 65536`` (0.1 -> 0.100006)
and kept values are scaled by the exact inverse of the keep probability, so
the layer stays unbiased. The words are ``jax.random.bits``'s, drawn through
:func:`jax_impl.kernels.threefry.bits`. Evaluation mode is the identity, as for
``nnx.Dropout``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jax_impl.kernels import threefry

_LEVELS = 1 << 16  # 16-bit random numbers


def dropout_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> tuple[jax.Array, float]:
    """A boolean keep-mask with ``P(drop) = round(rate * 65536) / 65536``, and the scale for kept values."""
    threshold = round(rate * _LEVELS)
    size = 1
    for dim in shape:
        size *= dim
    # JAX's default (partitionable) threefry, so a mask of a batch sharded over devices needs no
    # cross-device shuffling: the older layout pairs element i with element i + n/2.
    words = threefry.bits(key, (size + 1) // 2)  # jax.random.bits(key, ((size + 1) // 2,), jnp.uint32)
    halves = lax.bitcast_convert_type(words, jnp.uint16).reshape(-1)[:size]  # two 16-bit numbers per word
    keep = (halves >= threshold).reshape(shape)
    return keep, _LEVELS / (_LEVELS - threshold)


class Dropout(nnx.Dropout):
    """``nnx.Dropout`` (same arguments, random streams, ``train()``/``eval()``) with :func:`dropout_mask`."""

    def __call__(self, inputs, *, deterministic: bool | None = None, rngs=None):
        deterministic = self.deterministic if deterministic is None else deterministic
        if self.rate == 0.0 or deterministic:
            return inputs
        if self.rate == 1.0:
            return jnp.zeros_like(inputs)
        if self.broadcast_dims:
            return super().__call__(inputs, deterministic=deterministic, rngs=rngs)
        stream = self.rngs if rngs is None else rngs
        if isinstance(stream, nnx.Rngs):
            key = stream[self.rng_collection]()
        elif isinstance(stream, nnx.RngStream):
            key = stream()
        else:
            key = stream
        keep, scale = dropout_mask(key, inputs.shape, self.rate)
        return lax.select(keep, inputs * jnp.asarray(scale, inputs.dtype), jnp.zeros_like(inputs))
