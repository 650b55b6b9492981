"""Dense layers and LayerNorm on flattened tokens: nnx's parameters and values."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from jax_impl.kernels.flat import LayerNorm, Linear


def test_flat_linear_and_layer_norm_match_the_stock_layers():
    x = jax.random.normal(jax.random.key(3), (4, 17, 64))
    ours, stock = Linear(64, 32, rngs=nnx.Rngs(0)), nnx.Linear(64, 32, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(ours.kernel[...], stock.kernel[...])  # same init, same parameters
    np.testing.assert_allclose(ours(x), stock(x), rtol=1e-6, atol=1e-6)
    ln, stock_ln = LayerNorm(64, epsilon=1e-6, rngs=nnx.Rngs(0)), nnx.LayerNorm(64, epsilon=1e-6, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(ln(x), stock_ln(x), rtol=1e-6, atol=1e-6)
    assert ours(x[0, 0]).shape == (32,) and ours(x[0]).shape == (17, 32)
