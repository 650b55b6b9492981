"""Dense layers and LayerNorm that work on ``[N, D]``: leading axes flattened first, restored after.

The parameters, initialisers and arguments are ``nnx.Linear``'s and
``nnx.LayerNorm``'s; only the layout of the computation changes. On XLA CPU the
gradient of a dense layer over ``[B, T, D]`` tokens materialised transposed
copies of every activation; over ``[B*T, D]`` it does not (docs/performance.md,
"ViT: flat tokens").
"""

from __future__ import annotations

import jax
from flax import nnx


def _flat(module_call, x: jax.Array) -> jax.Array:
    if x.ndim <= 2:
        return module_call(x)
    lead = x.shape[:-1]
    return module_call(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)  # [..., D] -> [N, D] -> [..., D']


class Linear(nnx.Linear):
    """``nnx.Linear`` over the last axis of ``[..., in]``, computed as one ``[N, in]`` product."""

    def __call__(self, inputs: jax.Array, **kwargs) -> jax.Array:
        return _flat(lambda x: super(Linear, self).__call__(x, **kwargs), inputs)


class LayerNorm(nnx.LayerNorm):
    """``nnx.LayerNorm`` over the last axis, computed on the flattened ``[N, D]``."""

    def __call__(self, x: jax.Array, **kwargs) -> jax.Array:
        return _flat(lambda y: super(LayerNorm, self).__call__(y, **kwargs), x)
