"""Layers whose JAX defaults were measured to be slow on XLA CPU, rewritten with the same maths.

* :class:`Dropout`: ``nnx.Dropout`` draws one float32 uniform per element
  (``random.bernoulli``). On the 2-core CPU that was about 30 ms per ViT step
  (3.5 million elements, threefry); drawing 32-bit words and splitting each into
  two 16-bit numbers took about 5 ms. The drop probability becomes
  ``round(rate * 65536) / 65536`` (0.1 -> 0.100006) and kept values are scaled
  by the exact inverse of the keep probability, so the layer stays unbiased.
* :func:`max_pool`: non-overlapping max pooling as reshape + max, with a custom
  gradient that routes each window's gradient to its first maximum, as
  PyTorch's ``max_pool2d`` does. JAX's own gradient of ``max`` splits it
  evenly among tied maxima, needing a count and a division over the whole
  activation: about 3x slower here, and different from PyTorch at ties.
* :class:`Linear` and :class:`LayerNorm`: ``nnx.Linear``/``nnx.LayerNorm`` applied
  to ``[B, T, D]`` tokens as one ``[B*T, D]`` matrix. The maths is the same;
  XLA CPU's gradient of a dense layer over two leading axes materialised
  transposed copies of every activation, and the flat form cut the ViT's
  training step by about a fifth when measured.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

_LEVELS = 1 << 16  # 16-bit random numbers


def dropout_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> tuple[jax.Array, float]:
    """A boolean keep-mask with ``P(drop) = round(rate * 65536) / 65536``, and the scale for kept values."""
    threshold = round(rate * _LEVELS)
    size = 1
    for dim in shape:
        size *= dim
    # JAX's default (partitionable) threefry: the older layout was faster on one CPU device, but it
    # pairs element i with element i + n/2, so under data parallelism XLA inserted cross-device
    # collective permutes, which deadlocked on XLA CPU (2 virtual devices on 2 cores) when measured.
    words = jax.random.bits(key, ((size + 1) // 2,), jnp.uint32)
    halves = lax.bitcast_convert_type(words, jnp.uint16).reshape(-1)[:size]  # two 16-bit numbers per word
    keep = (halves >= threshold).reshape(shape)
    return keep, _LEVELS / (_LEVELS - threshold)


class Dropout(nnx.Dropout):
    """``nnx.Dropout`` (same arguments, streams, ``train()``/``eval()`` behaviour) with a cheaper mask."""

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


def _flat(module_call, x: jax.Array) -> jax.Array:
    if x.ndim <= 2:
        return module_call(x)
    lead = x.shape[:-1]
    return module_call(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)  # [..., D] -> [N, D] -> [..., D']


class Linear(nnx.Linear):
    """``nnx.Linear`` (same parameters) that flattens leading axes first: ``[..., in] -> [..., out]``."""

    def __call__(self, inputs: jax.Array, **kwargs) -> jax.Array:
        return _flat(lambda x: super(Linear, self).__call__(x, **kwargs), inputs)


class LayerNorm(nnx.LayerNorm):
    """``nnx.LayerNorm`` (same parameters) over the last axis, computed on the flattened ``[N, D]``."""

    def __call__(self, x: jax.Array, **kwargs) -> jax.Array:
        return _flat(lambda y: super(LayerNorm, self).__call__(y, **kwargs), x)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def max_pool(x: jax.Array, window: int) -> jax.Array:
    """Non-overlapping ``window`` x ``window`` max pooling of NHWC ``x`` (floor on ragged edges).

    Same values as ``nnx.max_pool(x, (w, w), (w, w))``, computed as the
    elementwise maximum of the ``w*w`` strided views (one fused loop; a
    ``reduce`` over the window axes was 8x slower on XLA CPU); gradient as
    PyTorch's ``max_pool2d``.
    """
    ho, wo = x.shape[1] // window, x.shape[2] // window
    views = [x[:, i : i + ho * window : window, j : j + wo * window : window, :]  # [B, Ho, Wo, C] each
             for i in range(window) for j in range(window)]
    return functools.reduce(jnp.maximum, views)


def _max_pool_fwd(x, window):
    y = max_pool(x, window)
    return y, (x, y)


def _max_pool_bwd(window, res, g):
    """Each window's gradient to its first maximum in row-major order (PyTorch's choice at ties).

    Works on the ``w*w`` strided views, as the forward pass does: view t takes the gradient
    where it equals the maximum and no earlier view did; the views are then interleaved
    back into place. (Moving each window onto its own axis and taking an argmax needed two
    transposes with a minor axis of 4: about 2.5x slower on XLA CPU.)
    """
    x, y = res
    b, h, w, c = x.shape
    ho, wo = h // window, w // window
    taken = jnp.zeros(y.shape, bool)
    rows = []
    for i in range(window):
        row = []
        for j in range(window):
            first = (x[:, i : i + ho * window : window, j : j + wo * window : window, :] == y) & ~taken
            taken = taken | first
            row.append(jnp.where(first, g, jnp.zeros((), g.dtype)))  # [B, Ho, Wo, C]
        rows.append(jnp.stack(row, axis=3))  # [B, Ho, Wo, w (j), C]
    gx = jnp.stack(rows, axis=2).reshape(b, ho * window, wo * window, c)  # [B, Ho, w (i), Wo, w (j), C]
    return (jnp.pad(gx, ((0, 0), (0, h - ho * window), (0, w - wo * window), (0, 0))),)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)
