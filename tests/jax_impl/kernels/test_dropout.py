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


@pytest.mark.parametrize("shape", [(8, 6), (4, 3, 5), (4, 1)])  # even and odd shares: words split across devices
@pytest.mark.parametrize("count", [2, 4])
def test_each_device_draws_its_rows_of_the_whole_batch_mask(shape, count):
    """Under ``batch_split`` (here a vmap standing in for the devices of a shard_map) every device's mask is its
    rows of the mask the unsplit batch draws: split training keeps the unsplit step's masks."""
    from jax_impl.kernels.dropout import batch_split

    key = jax.random.key(9)
    whole, scale = dropout_mask(key, shape, 0.3)
    local = (shape[0] // count, *shape[1:])

    def one_device(_):
        with batch_split("batch", count):
            return dropout_mask(key, local, 0.3)[0]

    shares = jax.vmap(one_device, axis_name="batch")(jnp.arange(count))  # [count, B/count, ...]
    np.testing.assert_array_equal(np.asarray(shares).reshape(shape), np.asarray(whole))
    assert not np.asarray(shares[0] == shares[1]).all()  # not one mask repeated
    assert dropout_mask(key, local, 0.3)[1] == scale
