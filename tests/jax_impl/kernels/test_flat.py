"""Dense layers and LayerNorm on flattened tokens: nnx's parameters, values and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_impl.kernels.flat import LayerNorm, Linear


def _assert_same_values_and_gradients(ours, stock, x, atol=1e-6):
    np.testing.assert_allclose(ours(x), stock(x), rtol=0, atol=atol)
    g = jax.random.normal(jax.random.key(9), stock(x).shape)

    def grads(model):
        return nnx.grad(lambda m, x: (m(x) * g).sum(), argnums=(0, 1))(model, x)

    (model_ours, x_ours), (model_stock, x_stock) = grads(ours), grads(stock)
    np.testing.assert_allclose(x_ours, x_stock, rtol=0, atol=atol * 10)
    for (path, a), (_, b) in zip(*(jax.tree.leaves_with_path(nnx.state(m)) for m in (model_ours, model_stock)),
                                 strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol * 10 * max(1.0, float(jnp.abs(b).max())),
                                   err_msg=jax.tree_util.keystr(path))


def test_flat_linear_matches_nnx_linear():
    x = jax.random.normal(jax.random.key(3), (4, 17, 64))
    ours, stock = Linear(64, 32, rngs=nnx.Rngs(0)), nnx.Linear(64, 32, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(ours.kernel[...], stock.kernel[...])  # same init, same parameters
    _assert_same_values_and_gradients(ours, stock, x)
    assert ours(x[0, 0]).shape == (32,) and ours(x[0]).shape == (17, 32)
    no_bias = Linear(64, 8, use_bias=False, rngs=nnx.Rngs(1))
    np.testing.assert_allclose(no_bias(x), nnx.Linear(64, 8, use_bias=False, rngs=nnx.Rngs(1))(x), atol=1e-6)


@pytest.mark.parametrize("fast_variance", [False, True])
def test_flat_layer_norm_matches_nnx_layer_norm(fast_variance):
    """Two-pass statistics (as the ViT asks) take the products; the fast variance stays Flax's."""
    x = 3 + 2 * jax.random.normal(jax.random.key(4), (4, 17, 64))
    kw = dict(epsilon=1e-6, use_fast_variance=fast_variance)
    ours, stock = LayerNorm(64, rngs=nnx.Rngs(0), **kw), nnx.LayerNorm(64, rngs=nnx.Rngs(0), **kw)
    ours.scale[...] = stock.scale[...] = jax.random.uniform(jax.random.key(5), (64,), minval=0.5, maxval=1.5)
    ours.bias[...] = stock.bias[...] = jax.random.normal(jax.random.key(6), (64,))
    _assert_same_values_and_gradients(ours, stock, x, atol=2e-6)
    assert ours(x[0, 0]).shape == (64,)
    sums = "reduce_sum" in str(jax.make_jaxpr(lambda x: ours(x))(x))
    assert sums == fast_variance, "two-pass statistics are products, not sums"


@pytest.mark.parametrize("options", [dict(use_scale=False), dict(use_bias=False), dict(dtype=jnp.bfloat16)])
def test_flat_layer_norm_options(options):
    x = 3 + 2 * jax.random.normal(jax.random.key(7), (2, 17, 64))
    ours = LayerNorm(64, epsilon=1e-6, use_fast_variance=False, rngs=nnx.Rngs(0), **options)
    stock = nnx.LayerNorm(64, epsilon=1e-6, use_fast_variance=False, rngs=nnx.Rngs(0), **options)
    assert ours(x).dtype == stock(x).dtype
    atol = 1e-2 if "dtype" in options else 2e-6
    np.testing.assert_allclose(ours(x).astype(jnp.float32), stock(x).astype(jnp.float32), rtol=0, atol=atol)


def test_flat_linear_in_bfloat16():
    x = jax.random.normal(jax.random.key(8), (4, 17, 64))
    ours = Linear(64, 32, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    stock = nnx.Linear(64, 32, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert ours(x).dtype == jnp.bfloat16
    np.testing.assert_allclose(ours(x).astype(jnp.float32), stock(x).astype(jnp.float32), rtol=0, atol=2e-2)
    g_ours = nnx.grad(lambda m: m(x).astype(jnp.float32).sum())(ours)
    g_stock = nnx.grad(lambda m: m(x).astype(jnp.float32).sum())(stock)
    assert g_ours["bias"][...].dtype == jnp.float32  # the parameter's dtype
    np.testing.assert_allclose(g_ours["bias"][...], g_stock["bias"][...], rtol=1e-2)
