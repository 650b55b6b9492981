"""Scaled dot-product attention with a gradient whose products XLA CPU hands to YNNPACK.

``softmax(q @ k^T * scale) @ v`` over ``[B, H, T, d]`` is thousands of tiny
matrix products. Forwards XLA CPU gives them to YNNPACK, but autodiff's
gradients with respect to ``k`` and ``v`` contract over the *rows* of both
operands (``dS^T @ q``, ``P^T @ g``), a layout YNNPACK does not take, and XLA
folds any transpose written before them back into the product: Eigen then runs
them one tiny matrix at a time, the slowest operations of the tuned ViT's
backward pass (docs/performance.md, "Attention's gradient"). :func:`attend`
has a custom gradient that forms the transposed operands ``P^T`` and ``dS^T``
itself, at the cost of two more tiny products: ``k @ q^T`` and its softmax over
the other axis in the forward pass (``P^T``), ``v @ g^T`` in the backward pass
(``dP^T``, from which ``dS^T`` is elementwise), so that every product contracts
the minor axis. The transposed softmax sums over
a non-minor axis, which XLA CPU splits into windows of 32 beyond 32 tokens, so
it :func:`applies` up to 32 tokens (the tiny/7 ViT's 17). Tested equal to the
plain attention and to its autodiff gradient.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

#: the most tokens :func:`attend` is used for: XLA CPU rewrites longer sums as 32-wide windows
#: (``reduce-window``), and at 50 tokens the plain attention's gradient was faster
MAX_TOKENS = 32


def applies(tokens: int) -> bool:
    """Whether :func:`attend` is the faster attention for sequences of ``tokens``."""
    return tokens <= MAX_TOKENS


def _t(x: jax.Array) -> jax.Array:
    return jnp.swapaxes(x, -1, -2)


def _softmax_f32(s: jax.Array, axis: int) -> jax.Array:
    return jax.nn.softmax(s.astype(jnp.promote_types(s.dtype, jnp.float32)), axis=axis)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def attend(q: jax.Array, k: jax.Array, v: jax.Array, scale: float) -> jax.Array:
    """``softmax(q @ k^T * scale) @ v``: ``[..., T, d]`` three times -> ``[..., T, d]``; the softmax in float32
    at least, the products in the inputs' dtype."""
    return _attend_fwd(q, k, v, scale)[0]  # (XLA drops the residuals it does not need)


def _attend_fwd(q, k, v, scale):
    weights = _softmax_f32(q @ _t(k) * scale, axis=-1)  # [..., T, S], float32
    weights_t = _softmax_f32(k @ _t(q) * scale, axis=-2)  # [..., S, T]: the same, formed transposed
    return weights.astype(v.dtype) @ v, (q, k, v, weights, weights_t)


def _attend_bwd(scale, residuals, g):
    q, k, v, weights, weights_t = residuals
    dw = (g @ _t(v)).astype(weights.dtype)  # [..., T, S]
    dw_t = (v @ _t(g)).astype(weights.dtype)  # [..., S, T]
    dot = (dw * weights).sum(axis=-1, keepdims=True)  # [..., T, 1]: the softmax's row sums
    ds = weights * (dw - dot) * scale  # [..., T, S]
    ds_t = weights_t * (dw_t - _t(dot)) * scale  # [..., S, T]
    dq = (ds.astype(q.dtype) @ k).astype(q.dtype)
    dk = (ds_t.astype(k.dtype) @ q).astype(k.dtype)  # dS^T @ q
    dv = (weights_t.astype(v.dtype) @ g).astype(v.dtype)  # P^T @ g
    return dq, dk, dv


attend.defvjp(_attend_fwd, _attend_bwd)
