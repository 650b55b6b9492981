"""A model built without its weights, for weights set next: the same model as one built whole, in less time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_impl.models import CNN, ViT, load, save
from jax_impl.models.export import load_weights
from jax_impl.models.init import check_weights_set, without_weights

MAKERS = {"cnn": lambda seed: CNN(rngs=nnx.Rngs(seed)), "vit": lambda seed: ViT("tiny/7", rngs=nnx.Rngs(seed))}


def _plain(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x,
                        tree)


@pytest.mark.parametrize("name", MAKERS)
def test_the_random_streams_are_those_of_the_whole_build(name):
    """Dropout after a warm start draws from the run's seed, as it would from a model built whole."""
    for seed in (0, 3):
        whole, bare = MAKERS[name](seed), without_weights(lambda: MAKERS[name](seed))
        rest_whole, rest_bare = (_plain(nnx.state(m, nnx.Not(nnx.Param))) for m in (whole, bare))
        assert jax.tree.structure(rest_whole) == jax.tree.structure(rest_bare)
        for a, b in zip(jax.tree.leaves(rest_whole), jax.tree.leaves(rest_bare), strict=True):
            np.testing.assert_array_equal(a, b)
        assert all(isinstance(p, jax.ShapeDtypeStruct) for p in jax.tree.leaves(nnx.state(bare, nnx.Param)))


@pytest.mark.parametrize("name", MAKERS)
def test_a_loaded_model_is_the_model_loaded_into_a_whole_build(name, tmp_path):
    trained = MAKERS[name](7)
    save(trained, tmp_path)
    whole = MAKERS[name](0)
    load_weights(whole, tmp_path)
    whole.eval()
    loaded = load(tmp_path)
    x = jax.random.normal(jax.random.key(1), (4, 28, 28, 1))
    np.testing.assert_array_equal(loaded(x), whole(x))
    np.testing.assert_array_equal(loaded(x), (trained.eval(), trained(x))[1])
    loaded.train()  # and it trains: its dropout draws
    assert not np.array_equal(loaded(x), loaded(x))


def test_a_parameter_left_unset_is_named():
    bare = without_weights(lambda: MAKERS["cnn"](0))
    with pytest.raises(ValueError, match="was never set"):
        check_weights_set(bare)
