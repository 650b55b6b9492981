"""A model initialised in one compiled call: the same arrays, bit for bit, as the model built eagerly (the models
that are built so; VGG16 and the ViT say why they are not, in ``compiled_init``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_impl.models import CNN, AlexNet, VGG16, ViT
from jax_impl.models import init
from jax_impl.models.init import initialized

MAKERS = {
    "cnn": lambda seed: CNN(rngs=nnx.Rngs(seed)),
    "alexnet": lambda seed: AlexNet(num_classes=10, rngs=nnx.Rngs(seed)),
}
SEEDS = {"cnn": (0, 3, 12345), "alexnet": (0, 1)}


def test_the_runner_builds_the_eager_weights_of_every_model_and_compiles_where_it_may(monkeypatch):
    """``build``, the runner's way: every model's weights are the eager ones; CNN and AlexNet go through one
    compiled call, VGG16 and the ViT (``compiled_init = False``) are built eagerly."""
    compiled = []
    def recorded(make):
        model = initialized(make)
        compiled.append(type(model).__name__)
        return model

    monkeypatch.setattr(init, "initialized", recorded)
    makers = {CNN: {}, AlexNet: {"num_classes": 10}, VGG16: {"num_classes": 10}, ViT: {"variant": "tiny/7"}}
    for cls, kwargs in makers.items():
        built, eager = init.build(cls, **kwargs, seed=2), cls(**kwargs, rngs=nnx.Rngs(2))
        for x, y in zip(jax.tree.leaves(_plain(nnx.state(built))), jax.tree.leaves(_plain(nnx.state(eager))),
                        strict=True):
            np.testing.assert_array_equal(x, y, err_msg=cls.__name__)
    assert compiled == ["CNN", "AlexNet"]


def _plain(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x,
                        tree)


@pytest.mark.parametrize("name", MAKERS)
def test_the_compiled_initialisation_draws_the_eager_weights(name):
    for seed in SEEDS[name]:
        eager, compiled = MAKERS[name](seed), initialized(lambda: MAKERS[name](seed))  # noqa: B023 - called at once
        assert nnx.graphdef(eager) == nnx.graphdef(compiled)
        a, b = _plain(nnx.state(eager)), _plain(nnx.state(compiled))
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b), strict=True):
            assert x.dtype == y.dtype, jax.tree_util.keystr(path)
            np.testing.assert_array_equal(x, y, err_msg=f"{name}, seed {seed}: {jax.tree_util.keystr(path)}")


def test_the_compiled_model_trains_its_own_dropout_stream():
    """The random streams come out as arrays of the model, not as traced values: the model runs and draws."""
    model = initialized(lambda: CNN(rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(1), (4, 28, 28, 1))
    assert not np.array_equal(model(x), model(x))  # training mode: two dropout draws
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))
