"""The written-out threefry: the very bits of ``jax.random.bits``, eagerly and under jit, and its fallbacks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_impl.kernels import threefry


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 69632])
@pytest.mark.parametrize("seed", [0, 3, 2**31 + 5])
def test_bits_equal_jax_random_bits(seed, n):
    key = jax.random.fold_in(jax.random.key(seed), 11)
    expected = np.asarray(jax.random.bits(key, (n,), jnp.uint32))
    np.testing.assert_array_equal(np.asarray(threefry.bits(key, n)), expected)
    np.testing.assert_array_equal(np.asarray(jax.jit(threefry.bits, static_argnums=1)(key, n)), expected)


def test_bits_from_an_nnx_stream_key_inside_jit():
    stream = nnx.Rngs(dropout=7).dropout
    keys = [stream() for _ in range(3)]
    drawn = jax.jit(lambda ks: [threefry.bits(k, 33) for k in ks])(keys)
    for key, words in zip(keys, drawn, strict=True):
        np.testing.assert_array_equal(np.asarray(words), np.asarray(jax.random.bits(key, (33,), jnp.uint32)))


def test_the_hash_equals_jax_threefry_2x32():
    from jax.extend.random import threefry_2x32

    key = jnp.array([0x13198A2E, 0x03707344], jnp.uint32)
    counts = jnp.arange(10, dtype=jnp.uint32)
    expected = threefry_2x32(key, counts)  # the hash of the pairs (counts[:5], counts[5:])
    a, b = threefry.threefry2x32(key[0], key[1], counts[:5], counts[5:])
    np.testing.assert_array_equal(np.asarray(jnp.concatenate([a, b])), np.asarray(expected))


def test_other_generators_fall_back_to_jax_random():
    raw = jax.random.PRNGKey(3)  # a legacy uint32[2] key
    np.testing.assert_array_equal(np.asarray(threefry.bits(raw, 10)),
                                  np.asarray(jax.random.bits(raw, (10,), jnp.uint32)))
    key = jax.random.key(1, impl="rbg")
    np.testing.assert_array_equal(np.asarray(threefry.bits(key, 10)),
                                  np.asarray(jax.random.bits(key, (10,), jnp.uint32)))
    with jax.threefry_partitionable(False):
        key = jax.random.key(2)
        np.testing.assert_array_equal(np.asarray(threefry.bits(key, 10)),
                                      np.asarray(jax.random.bits(key, (10,), jnp.uint32)))


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])  # the fused hash, and the fallback's draw and slice
def test_a_slice_of_a_draw_is_drawn_alone(impl):
    key = jax.random.key(5, impl=impl)
    whole = np.asarray(jax.random.bits(key, (40,), jnp.uint32))
    for start, n in ((0, 40), (0, 7), (13, 20), (39, 1)):
        np.testing.assert_array_equal(np.asarray(threefry.bits(key, n, start=start, total=40)), whole[start:start + n])
    traced = jax.jit(lambda s: threefry.bits(key, 6, start=s, total=40))(jnp.int32(21))  # a traced start
    np.testing.assert_array_equal(np.asarray(traced), whole[21:27])
