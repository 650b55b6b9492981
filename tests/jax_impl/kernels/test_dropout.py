"""16-bit dropout masks: the rate and scale they promise, and nnx.Dropout's modes and streams."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_impl.kernels.dropout import Dropout, dropout_mask


def test_dropout_mask_rate_and_unbiased_scale():
    keep, scale = dropout_mask(jax.random.key(0), (1000, 1000), 0.1)
    p_drop = 6554 / 65536  # round(0.1 * 65536) / 65536
    dropped = 1 - float(keep.mean())
    assert abs(dropped - p_drop) < 4 * np.sqrt(p_drop * (1 - p_drop) / 1e6)
    assert scale * (1 - p_drop) == pytest.approx(1.0, abs=1e-15)  # E[output] = input exactly
    assert dropout_mask(jax.random.key(0), (7, 3), 0.5)[0].shape == (7, 3)  # odd sizes


def test_dropout_module_train_eval_and_streams():
    layer = Dropout(0.25, rngs=nnx.Rngs(dropout=0))
    x = jnp.ones((64, 33))
    a, b = layer(x), layer(x)
    assert not jnp.array_equal(a, b), "the stream advances between calls"
    scale = 65536 / (65536 - 16384)
    assert set(np.unique(np.asarray(a)).tolist()) <= {0.0, np.float32(scale)}
    layer.eval()
    assert layer(x) is x
    assert Dropout(0.0, rngs=nnx.Rngs(0))(x) is x
    wide = Dropout(0.5, broadcast_dims=(0,), rngs=nnx.Rngs(dropout=1))(jnp.ones((8, 16)))
    assert (wide == wide[0]).all(), "broadcast_dims keeps nnx.Dropout's behaviour"
