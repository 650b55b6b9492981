"""The convolution kernels compute what the stock layers do, gradients and ties included."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jax_impl.kernels.conv import conv2d, conv_relu_pool
from jax_impl.kernels.flat import bias_add
from jax_impl.kernels.pooling import max_pool


def _stock(x, kernel, bias, stride, padding, window):
    """The block as the stock pieces compute it: lax convolution, + bias, ReLU, max pooling."""
    y = lax.conv_general_dilated(x, kernel, (stride, stride), ((padding, padding),) * 2,
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return max_pool(jax.nn.relu(y + bias), window)


# (batch, size, in channels, out channels, kernel, stride, padding, pool window)
CASES = [
    (3, 28, 1, 8, 3, 1, 1, 2),  # the CNN's first block (one channel: the fused path)
    (2, 11, 1, 5, 3, 2, 0, 3),  # stride 2, no padding, ragged pooling (conv 5x5 -> pool 1x1)
    (2, 9, 1, 4, 5, 1, 2, 2),  # 5x5 kernel, padding 2, odd size
    (2, 12, 3, 6, 3, 1, 1, 2),  # three channels: the plain path
]


def _values_and_grads(reference, ours, args, key):
    """Both functions' values, and their vector-Jacobian products with one random cotangent, compiled (eager
    dispatch of these many small operations is slow)."""
    @jax.jit
    def run(*args):
        want, want_vjp = jax.vjp(reference, *args)
        got, got_vjp = jax.vjp(ours, *args)
        g = jax.random.normal(key, want.shape)
        return want, got, want_vjp(g), got_vjp(g)

    return run(*args)


@pytest.mark.parametrize("case", CASES)
def test_conv_relu_pool_matches_the_stock_block(case):
    b, size, cin, cout, k, stride, padding, window = case
    keys = jax.random.split(jax.random.key(sum(case)), 4)
    x = jax.random.normal(keys[0], (b, size, size, cin))
    x = jnp.where(jax.random.uniform(keys[1], x.shape) < 0.3, 0.0, x)  # zeros: tied maxima and zero outputs
    kernel = jax.random.normal(keys[2], (k, k, cin, cout)) * 0.3
    bias = jax.random.normal(keys[3], (cout,)) * 0.1
    want, got, want_grads, got_grads = _values_and_grads(
        lambda *a: _stock(*a, stride, padding, window),
        lambda *a: conv_relu_pool(*a, stride=stride, padding=padding, window=window), (x, kernel, bias), keys[0])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if want.size >= 50:  # (the ragged 1x1 case pools nine values: rarely all negative)
        assert float((want == 0).mean()) > 0.05, "the case must exercise ReLU's zero gradient"
    for name, a, w in zip(("x", "kernel", "bias"), got_grads, want_grads):
        np.testing.assert_allclose(a, w, rtol=1e-4, atol=1e-4, err_msg=f"gradient of {name}")


def test_fused_block_gradient_goes_to_the_first_maximum_at_ties():
    # a 1x1 kernel of 1 and bias 0: the block is max_pool(relu(x)), ties decided as PyTorch does
    x = jnp.array([[3.0, 3.0, 0.0, 1.0],
                   [3.0, 1.0, 2.0, 2.0],
                   [-1.0, -2.0, 4.0, 4.0],
                   [-1.0, -1.0, 4.0, 4.0]]).reshape(1, 4, 4, 1)
    kernel, bias = jnp.ones((1, 1, 1, 1)), jnp.zeros((1,))
    y, vjp = jax.vjp(lambda k, b: conv_relu_pool(x, k, b, window=2), kernel, bias)
    np.testing.assert_array_equal(y[0, :, :, 0], [[3, 2], [0, 4]])
    g = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    dk, db = vjp(g)
    # kernel gradient: sum of g times the winning input (3*1 + 2*2 + 4*4; the all-negative window gives 0)
    assert float(dk.reshape(())) == 23.0
    assert float(db[0]) == 7.0  # 1 + 2 + 4: no gradient through the window whose output is 0


def test_fused_path_only_for_one_input_channel():
    """The fused loop for one input channel; several channels take the plain convolution."""
    def ops(x):
        return str(jax.make_jaxpr(lambda x: conv_relu_pool(x, jnp.ones((3, 3, x.shape[-1], 4)), jnp.zeros(4),
                                                           padding=1))(x))
    one, three = ops(jnp.ones((2, 8, 8, 1))), ops(jnp.ones((2, 8, 8, 3)))
    assert "conv_general_dilated" not in one and "custom_vjp" in one
    assert "conv_general_dilated" in three


def _lax_conv(x, kernel, stride, padding):
    return lax.conv_general_dilated(x, kernel, (stride, stride), ((padding, padding),) * 2,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


# (batch, size, in channels, out channels, kernel, stride, padding)
CONV_CASES = [
    (4, 14, 32, 64, 3, 1, 1),  # the CNN's second convolution, smaller batch
    (2, 11, 4, 6, 5, 1, 2),  # 5x5, padding 2
    (2, 8, 2, 3, 3, 1, 0),  # no padding
    (3, 9, 3, 5, 3, 2, 0),  # stride 2: the input gradient takes JAX's rule
    (2, 10, 2, 3, 3, 2, 0),  # stride 2 leaves the last row and column unread: the kernel gradient crops
    (2, 10, 2, 3, 3, 2, 1),  # stride 2 with padding
    (2, 6, 2, 3, 3, 1, 3),  # padding wider than the kernel: the input gradient crops
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradients_match_jax(case):
    """The CPU's canonical-layout gradient convolutions against JAX's own rule."""
    b, size, cin, cout, k, stride, padding = case
    keys = jax.random.split(jax.random.key(sum(case)), 3)
    x = jax.random.normal(keys[0], (b, size, size, cin))
    kernel = jax.random.normal(keys[1], (k, k, cin, cout))
    want, got, want_grads, got_grads = _values_and_grads(
        lambda x, k: _lax_conv(x, k, stride, padding), lambda x, k: conv2d(x, k, None, stride, padding),
        (x, kernel), keys[2])
    np.testing.assert_array_equal(got, want)
    for name, a, w in zip(("x", "kernel"), got_grads, want_grads):
        np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-4, err_msg=f"gradient of {name}")


# (batch, size, in channels, out channels, kernel, stride, padding): maps smaller than the kernel
PRODUCT_CASES = [
    (4, 2, 16, 8, 3, 1, 1),  # VGG16's last block at 32 px: 2 x 2 maps, 3 x 3 kernels
    (3, 1, 8, 4, 3, 1, 1),  # one pixel
    (2, 2, 4, 6, 3, 2, 1),  # stride 2
    (2, 4, 3, 5, 5, 2, 2),  # 5 x 5 kernel over a 4 x 4 map
]


@pytest.mark.parametrize("case", PRODUCT_CASES)
@pytest.mark.parametrize("canonical_grads", [True, False])
def test_conv2d_on_maps_smaller_than_the_kernel_is_the_convolution(case, canonical_grads):
    """The patches' product: the convolution's values and gradients to float32 rounding (another summation
    order), whichever gradients are asked for elsewhere."""
    b, size, cin, cout, k, stride, padding = case
    keys = jax.random.split(jax.random.key(sum(case)), 3)
    x = jax.random.normal(keys[0], (b, size, size + 1, cin))
    kernel = jax.random.normal(keys[1], (k, k, cin, cout))
    want, got, want_grads, got_grads = _values_and_grads(
        lambda x, k: _lax_conv(x, k, stride, padding),
        lambda x, k: conv2d(x, k, None, stride, padding, canonical_grads=canonical_grads), (x, kernel), keys[2])
    assert "dot_general" in str(jax.make_jaxpr(lambda x: conv2d(x, kernel, None, stride, padding))(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for name, a, w in zip(("x", "kernel"), got_grads, want_grads):
        np.testing.assert_allclose(a, w, rtol=1e-5, atol=1e-4, err_msg=f"gradient of {name}")


def test_conv2d_with_jax_gradients_is_the_plain_convolution():
    """``canonical_grads=False``: the stock convolution itself, values and gradients bit for bit."""
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 4, 6))
    want, got, want_grads, got_grads = _values_and_grads(
        lambda x, k: _lax_conv(x, k, 1, 1), lambda x, k: conv2d(x, k, None, 1, 1, canonical_grads=False),
        (x, kernel), jax.random.key(2))
    np.testing.assert_array_equal(got, want)
    for a, w in zip(got_grads, want_grads):
        np.testing.assert_array_equal(a, w)


def test_conv2d_gradients_stay_canonical_inside_a_loop():
    """Why conv2d has its own gradient: in a lax.fori_loop, XLA CPU left JAX's kernel-gradient convolution
    in a layout Eigen does not take and ran it as a plain loop (docs/performance.md, "CNN blocks")."""
    if jax.default_backend() != "cpu":
        pytest.skip("an XLA CPU layout question")
    x = jax.random.normal(jax.random.key(0), (4, 14, 14, 8))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 8, 16))

    def steps(conv, x, kernel):  # forward, kernel and input gradients: three convolutions a step
        def body(i, xk):
            grads = jax.grad(lambda x, k: jnp.sum(conv(x, k) ** 2), argnums=(0, 1))(*xk)
            return tuple(a - 1e-3 * g for a, g in zip(xk, grads))
        return lax.fori_loop(0, 3, body, (x, kernel))

    def dim_labels(conv):
        hlo = jax.jit(lambda x, k: steps(conv, x, k)).lower(x, kernel).compile().as_text()
        return [line.split("dim_labels=")[1].split(",")[0] for line in hlo.splitlines() if " convolution(" in line]

    ours = dim_labels(lambda x, k: conv2d(x, k, None, 1, 1))
    assert len(ours) == 3 and set(ours) == {"b01f_01io->b01f"}, ours
    # the premise, without which the check above could not fail: JAX's own rule is not canonical there
    assert set(dim_labels(lambda x, k: _lax_conv(x, k, 1, 1))) != {"b01f_01io->b01f"}, (
        "XLA CPU now keeps JAX's own gradient convolutions canonical inside loops: re-measure "
        "--steps-per-call without conv2d's own gradient (docs/results/cpu-2core-steps-per-call) and drop it")


def test_bias_add_gradient_is_the_sum_over_rows():
    x = jax.random.normal(jax.random.key(0), (4, 5, 6, 7))
    bias = jnp.arange(7.0)
    np.testing.assert_array_equal(bias_add(x, bias), x + bias)
    g = jax.random.normal(jax.random.key(1), x.shape)
    gx, gb = jax.vjp(bias_add, x, bias)[1](g)
    np.testing.assert_array_equal(gx, g)
    np.testing.assert_allclose(gb, g.sum((0, 1, 2)), rtol=1e-5, atol=1e-5)
