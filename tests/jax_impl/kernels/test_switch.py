"""The kernels switch: what auto means, and stock and tuned models computing the same logits and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_impl import kernels, train
from jax_impl.models import CNN, ViT

BUILDERS = {"cnn": lambda k: CNN(kernels=k, rngs=nnx.Rngs(0)), "vit": lambda k: ViT("tiny/7", kernels=k, rngs=nnx.Rngs(0))}


def test_auto_means_tuned_on_the_cpu_backend_only(monkeypatch):
    assert kernels.resolve("auto") == "tuned" and kernels.resolve("stock") == "stock"
    assert CNN(rngs=nnx.Rngs(0)).kernels == "tuned"
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert kernels.resolve("auto") == "stock" and kernels.resolve("tuned") == "tuned"
    assert ViT(rngs=nnx.Rngs(0)).kernels == "stock"
    with pytest.raises(ValueError, match="unknown kernels 'fast'"):
        CNN(kernels="fast", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("name", BUILDERS)
def test_stock_models_hold_only_flax_layers(name):
    """Stock: every layer is Flax's own class; tuned: the same tree of parameters, through jax_impl.kernels."""
    stock, tuned = BUILDERS[name]("stock"), BUILDERS[name]("tuned")
    ours = {type(m).__module__ for _, m in nnx.iter_graph(stock) if isinstance(m, nnx.Module)}
    assert not any(mod.startswith("jax_impl.kernels") for mod in ours), ours
    assert any(type(m).__module__.startswith("jax_impl.kernels") for _, m in nnx.iter_graph(tuned)
               if isinstance(m, nnx.Module))
    shapes = lambda m: jax.tree.map(jnp.shape, nnx.state(m, nnx.Param))  # noqa: E731
    assert shapes(stock) == shapes(tuned)
    stock.eval()  # (dropout in training mode advances a random stream: not traceable this way)
    assert "custom_vjp" not in str(jax.make_jaxpr(lambda x: stock(x))(jnp.zeros((2, 28, 28, 1))))


@pytest.mark.parametrize("name", BUILDERS)
def test_stock_and_tuned_give_the_same_logits_and_gradients(mnist, name):
    """Evaluation mode (dropout off), a real MNIST batch: its black background makes tied maxima in the
    first pooling windows, which both pick the same way (see test_pooling)."""
    stock, tuned = BUILDERS[name]("stock"), BUILDERS[name]("tuned")
    stock.eval(), tuned.eval()
    x, y = train.preprocess(mnist.test_images[:64]), jnp.asarray(mnist.test_labels[:64])

    @nnx.jit
    def logits_and_grads(model):
        return model(x), nnx.grad(lambda m: train.loss_fn(m, x, y))(model)

    (logits_s, grads_s), (logits_t, grads_t) = logits_and_grads(stock), logits_and_grads(tuned)
    np.testing.assert_allclose(logits_t, logits_s, rtol=0, atol=1e-5)
    grads = [grads_s, grads_t]
    for (path, a), (_, b) in zip(*(jax.tree.leaves_with_path(g) for g in grads)):
        scale = max(1.0, float(jnp.abs(a).max()))
        np.testing.assert_allclose(b / scale, a / scale, rtol=0, atol=1e-5, err_msg=jax.tree_util.keystr(path))


def test_tuned_dropout_is_the_16_bit_mask_and_stock_is_flaxs():
    assert type(CNN(kernels="stock", rngs=nnx.Rngs(0)).dropout) is nnx.Dropout
    from jax_impl.kernels.dropout import Dropout

    assert type(CNN(kernels="tuned", rngs=nnx.Rngs(0)).dropout) is Dropout
