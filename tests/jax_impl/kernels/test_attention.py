"""Attention with the XLA-CPU gradient: the plain attention's values and autodiff gradients, and where it applies."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_impl.kernels import attention


def plain(q, k, v, scale):
    scores = (q @ jnp.swapaxes(k, -1, -2) * scale).astype(jnp.float32)
    return jax.nn.softmax(scores, axis=-1).astype(v.dtype) @ v


def _inputs(shape, dtype=jnp.float32, seed=0):
    keys = jax.random.split(jax.random.key(seed), 4)
    return [jax.random.normal(key, shape, jnp.float32).astype(dtype) for key in keys]


@pytest.mark.parametrize("shape", [(4, 2, 17, 16), (3, 1, 5, 8), (2, 4, 32, 4)])
def test_values_and_gradients_equal_the_plain_attention(shape):
    q, k, v, g = _inputs(shape)
    scale = 1 / shape[-1] ** 0.5
    out, vjp = jax.vjp(lambda *a: attention.attend(*a, scale), q, k, v)
    expected, plain_vjp = jax.vjp(lambda *a: plain(*a, scale), q, k, v)
    np.testing.assert_allclose(out, expected, rtol=0, atol=2e-6)
    for name, got, want in zip("qkv", vjp(g), plain_vjp(g), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, float(jnp.abs(want).max())),
                                   err_msg=f"d{name}")


def test_gradient_under_jit():
    q, k, v, _ = _inputs((2, 2, 17, 8), seed=1)
    loss = lambda q, k, v: (attention.attend(q, k, v, 0.5) ** 2).sum()  # noqa: E731
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)
    want = jax.grad(lambda q, k, v: (plain(q, k, v, 0.5) ** 2).sum(), argnums=(0, 1, 2))(q, k, v)
    for got, expected in zip(grads, want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_bfloat16_products_with_a_float32_softmax():
    q, k, v, g = _inputs((2, 4, 17, 16), jnp.bfloat16)
    out, vjp = jax.vjp(lambda *a: attention.attend(*a, 0.25), q, k, v)
    grads = vjp(g)
    assert out.dtype == jnp.bfloat16 and all(d.dtype == jnp.bfloat16 for d in grads)
    wide = [a.astype(jnp.float32) for a in (q, k, v, g)]
    exact, exact_vjp = jax.vjp(lambda *a: plain(*a, 0.25), *wide[:3])
    np.testing.assert_allclose(out.astype(jnp.float32), exact, rtol=0, atol=3e-2)
    for got, want in zip(grads, exact_vjp(wide[3]), strict=True):  # bfloat16 rounding, relative to the largest
        np.testing.assert_allclose(got.astype(jnp.float32), want, rtol=0, atol=3e-2 * float(jnp.abs(want).max()))


def test_it_applies_up_to_32_tokens_and_the_tuned_vit_runs_it():
    from flax import nnx

    from jax_impl.models import ViT

    assert attention.applies(17) and attention.applies(32)
    assert not attention.applies(33) and not attention.applies(50)

    def jaxpr(variant, kernels):
        model = ViT(variant, kernels=kernels, rngs=nnx.Rngs(0))
        model.eval()
        return str(jax.make_jaxpr(lambda x: model(x))(jnp.zeros((2, 28, 28, 1))))

    assert "name=attend" in jaxpr("tiny/7", "tuned")  # 17 tokens
    assert "name=attend" not in jaxpr("tiny/4", "tuned")  # 50 tokens: the plain attention
    assert "name=attend" not in jaxpr("tiny/7", "stock")
