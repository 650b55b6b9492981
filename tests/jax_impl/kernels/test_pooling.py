"""Max pooling: nnx.max_pool's values, PyTorch's gradient (the first maximum of each window)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_impl.kernels.pooling import max_pool


@pytest.mark.parametrize("shape,window", [((2, 28, 28, 3), 2), ((2, 7, 7, 5), 2), ((1, 9, 10, 2), 3)])
def test_max_pool_equals_nnx_max_pool(shape, window):
    x = jax.random.normal(jax.random.key(1), shape)
    np.testing.assert_array_equal(max_pool(x, window), nnx.max_pool(x, (window,) * 2, (window,) * 2))


def test_max_pool_gradient_goes_to_the_first_maximum_of_each_window():
    x = jnp.array([[3.0, 3.0, 0.0, 1.0],
                   [3.0, 1.0, 2.0, 2.0],
                   [0.0, 5.0, 4.0, 4.0],
                   [5.0, 0.0, 4.0, 4.0]]).reshape(1, 4, 4, 1)
    g = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    (dx,) = jax.vjp(lambda x: max_pool(x, 2), x)[1](g)
    expected = [[1, 0, 0, 0],
                [0, 0, 2, 0],  # ties 2, 2: the first in row-major order
                [0, 3, 4, 0],  # ties 5 / 5 and 4 x4: the first
                [0, 0, 0, 0]]
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_max_pool_gradient_ignores_ragged_edges():
    x = jax.random.normal(jax.random.key(2), (1, 5, 5, 1))
    (dx,) = jax.vjp(lambda x: max_pool(x, 2), x)[1](jnp.ones((1, 2, 2, 1)))
    assert dx.shape == x.shape and float(dx[0, 4].sum()) == 0 and float(dx[0, :, 4].sum()) == 0
    assert float(dx.sum()) == 4


def test_gradient_at_ties_is_the_stock_layers_too():
    """nnx.max_pool's gradient (XLA's select-and-scatter) also picks each window's first maximum here,
    so stock and tuned models agree even where pooling windows hold ties."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, 3, size=(4, 14, 14, 8)).astype(np.float32))  # values 0, 1, 2: ties everywhere
    g = jnp.asarray(rng.standard_normal((4, 7, 7, 8)).astype(np.float32))
    (ours,) = jax.vjp(lambda v: max_pool(v, 2), x)[1](g)
    (stock,) = jax.vjp(lambda v: nnx.max_pool(v, (2, 2), strides=(2, 2)), x)[1](g)
    np.testing.assert_array_equal(ours, stock)
