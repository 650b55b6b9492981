"""Dropout whose mask comes from 16-bit random numbers: two per 32-bit word drawn.

``nnx.Dropout`` draws one float32 uniform per element; on XLA CPU the ViT's
masks were then a large share of its step (docs/performance.md, "Dropout").
Here the drop probability is ``round(rate * 65536) / 65536`` (0.1 -> 0.100006)
and kept values are scaled by the exact inverse of the keep probability, so
the layer stays unbiased. The words are ``jax.random.bits``'s, drawn through
:func:`jax_impl.kernels.threefry.bits`. Evaluation mode is the identity, as for
``nnx.Dropout``.

Inside a ``shard_map`` over the batch (:func:`batch_split`, as
``jax_impl.train``'s flat all-reduce uses it), each device draws its own rows of
the mask of the whole batch: the same masks as the unsplit step.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jax_impl.kernels import threefry

_LEVELS = 1 << 16  # 16-bit random numbers


#: (mesh axis, devices) while a step traces one device's share of a batch split along its leading axis; else None.
_SPLIT: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar("batch_split", default=None)


@contextlib.contextmanager
def batch_split(axis_name: str, count: int) -> Iterator[None]:
    """Within: :class:`Dropout` draws each device's rows of the whole batch's mask, for code traced inside a
    ``shard_map`` that splits the batch (every dropout input batch-major along its leading axis) over the
    ``count`` devices of ``axis_name``."""
    token = _SPLIT.set((axis_name, count))
    try:
        yield
    finally:
        _SPLIT.reset(token)


def dropout_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> tuple[jax.Array, float]:
    """A boolean keep-mask with ``P(drop) = round(rate * 65536) / 65536``, and the scale for kept values.

    Under :func:`batch_split`, ``shape`` is this device's share and the mask its rows of the whole batch's.
    """
    threshold = round(rate * _LEVELS)
    size = 1
    for dim in shape:
        size *= dim
    split = _SPLIT.get()
    # JAX's default (partitionable) threefry, so a mask of a batch sharded over devices needs no
    # cross-device shuffling: the older layout pairs element i with element i + n/2.
    if split is None:
        words = threefry.bits(key, (size + 1) // 2)  # jax.random.bits(key, ((size + 1) // 2,), jnp.uint32)
        first = 0
    else:  # this device's elements start at rank * size of the whole batch's rank-major mask
        axis_name, count = split
        start = lax.axis_index(axis_name).astype(jnp.uint32) * jnp.uint32(size)
        words_needed = (size + 1) // 2 + size % 2  # an odd share may start in a word's second half
        words = threefry.bits(key, words_needed, start=start // 2, total=(size * count + 1) // 2 + 1)
        first = start % 2
    halves = lax.bitcast_convert_type(words, jnp.uint16).reshape(-1)  # two 16-bit numbers per word
    halves = halves[:size] if split is None or size % 2 == 0 else lax.dynamic_slice_in_dim(halves, first, size)
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
