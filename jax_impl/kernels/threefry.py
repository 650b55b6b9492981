"""``jax.random.bits`` for threefry keys, written out so that XLA CPU fuses it: the same bits, faster.

On the CPU backend JAX lowers its threefry-2x32 hash as a rolled loop (a
``while`` of five iterations, to keep compile time low), and XLA CPU runs each
iteration as separate kernels that write the whole state back to memory. For
the masks of a training step that was most of dropout's cost
(docs/performance.md, "Random bits"). :func:`bits` is the same hash with its 20
rounds unrolled, one elementwise expression that XLA fuses into a single pass;
it returns exactly what ``jax.random.bits(key, (n,), jnp.uint32)`` returns (tested
bit for bit) and falls back to it for any other generator or counter layout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

#: the rotation constants of Threefry-2x32 (Salmon et al., 2011), as in jax._src.random.threefry2x32
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA  # the key schedule's third word is k0 ^ k1 ^ this


def _rotate_left(x: jax.Array, d: int) -> jax.Array:
    return (x << jnp.uint32(d)) | (x >> jnp.uint32(32 - d))


def threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32 hash (20 rounds) of the counter pairs ``(x0, x1)`` under the key ``(k0, k1)``, uint32."""
    ks = (k0, k1, k0 ^ k1 ^ jnp.uint32(_PARITY))
    a, b = x0 + ks[0], x1 + ks[1]
    for i in range(5):  # five groups of four rounds, the key injected after each group
        for r in _ROTATIONS[i % 2]:
            a = a + b
            b = a ^ _rotate_left(b, r)
        a = a + ks[(i + 1) % 3]
        b = b + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return a, b


def _applies(key: jax.Array) -> bool:
    """Whether ``key`` draws through threefry-2x32 with JAX's partitionable counters (the default)."""
    return (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()
            and str(jax.random.key_impl(key)) == "threefry2x32" and jax.config.jax_threefry_partitionable)


def bits(key: jax.Array, n: int, *, start: jax.Array | int = 0, total: int | None = None) -> jax.Array:
    """``jax.random.bits(key, (total,), jnp.uint32)[start:start + n]``: ``n`` random 32-bit words from a typed PRNG
    key, those at ``start ..`` of a draw of ``total`` (default: ``n`` from 0).

    The slice is computed directly (each word depends on its index only), so one
    device of several draws its own part of a mask without the rest; ``start``
    may be traced. Outside the fused case the whole draw is made and sliced.
    """
    total = n if total is None else total
    if not _applies(key) or total >= 1 << 32:
        words = jax.random.bits(key, (total,), jnp.uint32)
        return words if n == total else lax.dynamic_slice_in_dim(words, start, n)
    k0, k1 = jax.random.key_data(key)
    # the counter pairs (0, i), i < 2**32: JAX's iota_2x32_shape((total,)) at i = start ..
    counts = lax.iota(jnp.uint32, n) + jnp.asarray(start, jnp.uint32)
    hi, lo = threefry2x32(k0, k1, jnp.zeros_like(counts), counts)
    return hi ^ lo
