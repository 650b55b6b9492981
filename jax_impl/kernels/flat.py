"""Dense layers and LayerNorm that work on ``[N, D]``: leading axes flattened first, restored after.

The parameters, initialisers and arguments are ``nnx.Linear``'s and
``nnx.LayerNorm``'s; only the layout of the computation changes:

* On XLA CPU the gradient of a dense layer over ``[B, T, D]`` tokens
  materialised transposed copies of every activation; over ``[B*T, D]`` it does
  not (docs/performance.md, "ViT: flat tokens").
* XLA CPU lowers a sum longer than 32 elements to a windowed reduction
  (``reduce-window``), slow for the sums these layers need: the bias gradient
  (a sum over the ``N`` rows) and LayerNorm's mean and variance (sums over
  ``D``). Here they are products with a vector of ones, which XLA hands to its
  matrix-product library (docs/performance.md, "Sums as products"), at the
  highest precision (a GPU's TF32 would round the statistics).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax


def _flat(module_call, x: jax.Array) -> jax.Array:
    if x.ndim <= 2:
        return module_call(x)
    lead = x.shape[:-1]
    return module_call(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)  # [..., D] -> [N, D] -> [..., D']


@jax.custom_vjp
def bias_add(x: jax.Array, bias: jax.Array) -> jax.Array:
    """``x + bias`` over the last axis; the bias gradient is a product with ones."""
    return x + bias


def _bias_add_fwd(x, bias):
    return x + bias, None


def _bias_add_bwd(_, g):
    c = g.shape[-1]
    rows = g.reshape(-1, c)  # [N, C]
    ones = jnp.ones((1, rows.shape[0]), g.dtype)
    return g, jnp.matmul(ones, rows, precision=lax.Precision.HIGHEST).reshape(c)


bias_add.defvjp(_bias_add_fwd, _bias_add_bwd)


def _row_means(x: jax.Array) -> jax.Array:
    """``x.mean(-1, keepdims=True)`` for ``[N, D]``, as a product with ``1/D``."""
    weights = jnp.full((x.shape[-1], 1), 1 / x.shape[-1], x.dtype)
    return jnp.matmul(x, weights, precision=lax.Precision.HIGHEST)  # [N, 1]


class Linear(nnx.Linear):
    """``nnx.Linear`` over the last axis of ``[..., in]``: one ``[N, in]`` product, then :func:`bias_add`."""

    def __call__(self, inputs: jax.Array, **kwargs) -> jax.Array:
        if kwargs or self.bias is None:
            return _flat(lambda x: super(Linear, self).__call__(x, **kwargs), inputs)
        return _flat(self._affine, inputs)

    def _affine(self, x: jax.Array) -> jax.Array:  # [N, in] -> [N, out], as nnx.Linear computes it
        x, kernel, bias = self.promote_dtype((x, self.kernel[...], self.bias[...]), dtype=self.dtype)
        extra = {} if self.preferred_element_type is None else {"preferred_element_type": self.preferred_element_type}
        y = self.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())), precision=self.precision, **extra)
        return bias_add(y, bias.astype(y.dtype))


class LayerNorm(nnx.LayerNorm):
    """``nnx.LayerNorm`` over the last axis, computed on the flattened ``[N, D]``, its two-pass statistics as
    products (other settings: Flax's own computation)."""

    def __call__(self, x: jax.Array, **kwargs) -> jax.Array:
        if self.reduction_axes not in (-1, (-1,)) or self.feature_axes not in (-1, (-1,)):
            return super().__call__(x, **kwargs)  # other axes: nothing to flatten
        if kwargs or self.use_fast_variance or self.axis_name is not None:
            return _flat(lambda y: super(LayerNorm, self).__call__(y, **kwargs), x)
        return _flat(self._normalize, x)

    def _normalize(self, x: jax.Array) -> jax.Array:  # [N, D], Flax's _normalize with these statistics
        scale = self.scale[...] if self.scale is not None else None
        bias = self.bias[...] if self.bias is not None else None
        x, scale, bias = self.promote_dtype((x, scale, bias), dtype=self.dtype)
        stats = x.astype(jnp.promote_types(x.dtype, jnp.float32))  # as Flax: statistics in float32 at least
        centred = stats - _row_means(stats)
        var = _row_means(centred * centred)  # [N, 1], the two-pass variance
        mul = lax.rsqrt(var + self.epsilon)
        if scale is not None:
            mul = mul * scale
        y = centred * mul
        if bias is not None:
            y = y + bias
        if self.dtype is not None:
            return y.astype(self.dtype)
        return y.astype(jnp.result_type(*(a for a in (x, scale, bias) if a is not None)))
