"""Max pooling with PyTorch's gradient: each window's gradient goes to its first maximum.

Same values as ``nnx.max_pool`` with a square window and stride equal to it
(floor on ragged edges). The gradient differs from JAX's only at ties, where it
picks what PyTorch's ``max_pool2d`` picks, so the two frameworks' gradients
agree exactly. Both passes work on the ``w*w`` strided views of the input, one
fused elementwise loop on XLA CPU (see docs/performance.md, "Max pooling").
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _views(x: jax.Array, window: int) -> list[jax.Array]:
    """The ``window**2`` strided views, row-major offsets, each ``[B, H // w, W // w, C]``."""
    ho, wo = x.shape[1] // window, x.shape[2] // window
    return [x[:, i : i + ho * window : window, j : j + wo * window : window, :]
            for i in range(window) for j in range(window)]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def max_pool(x: jax.Array, window: int) -> jax.Array:
    """Non-overlapping ``window`` x ``window`` max pooling of NHWC ``x``: ``[B, H, W, C] -> [B, H//w, W//w, C]``."""
    return functools.reduce(jnp.maximum, _views(x, window))


def _max_pool_fwd(x, window):
    y = max_pool(x, window)
    return y, (x, y)


def _max_pool_bwd(window, res, g):
    """View t takes the gradient where it equals the maximum and no earlier view did; the views are then
    interleaved back into place."""
    x, y = res
    b, h, w, c = x.shape
    ho, wo = h // window, w // window
    taken = jnp.zeros(y.shape, bool)
    zero = jnp.zeros((), g.dtype)
    per_offset = []
    for view in _views(x, window):
        first = (view == y) & ~taken
        taken = taken | first
        per_offset.append(jnp.where(first, g, zero))  # [B, Ho, Wo, C]
    rows = [jnp.stack(per_offset[i * window : (i + 1) * window], axis=3) for i in range(window)]  # [B, Ho, Wo, w, C]
    gx = jnp.stack(rows, axis=2).reshape(b, ho * window, wo * window, c)  # [B, Ho, w (i), Wo, w (j), C]
    return (jnp.pad(gx, ((0, 0), (0, h - ho * window), (0, w - wo * window), (0, 0))),)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)
