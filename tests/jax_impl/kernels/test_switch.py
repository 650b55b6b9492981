"""The kernels switch: what auto means, and stock and tuned models computing the same logits and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_impl import kernels, train
from jax_impl.models import CNN, VGG16, AlexNet, MNISTClassifier, ViT


def _port(net, arch: str, image_size: int):
    return lambda k: MNISTClassifier(net(num_classes=10, kernels=k, rngs=nnx.Rngs(0)), arch, image_size)


BUILDERS = {"cnn": lambda k: CNN(kernels=k, rngs=nnx.Rngs(0)),
            "vit": lambda k: ViT("tiny/7", kernels=k, rngs=nnx.Rngs(0)),
            "vgg16": _port(VGG16, "vgg16", 32), "alexnet": _port(AlexNet, "alexnet", 63)}


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
def test_stock_and_tuned_start_alike_and_give_the_same_logits_and_gradients(mnist, name):
    """One seed, one start: the same initial weights. Then evaluation mode (dropout off), a real MNIST batch: its
    black background makes tied maxima in the first pooling windows, which both pick the same way (see
    test_pooling)."""
    stock, tuned = BUILDERS[name]("stock"), BUILDERS[name]("tuned")
    for (path, a), (_, b) in zip(*(jax.tree.leaves_with_path(nnx.state(m, nnx.Param)) for m in (stock, tuned))):
        np.testing.assert_array_equal(a, b, err_msg=f"initial {jax.tree_util.keystr(path)}")
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


def test_the_ports_convolutions_run_the_tuned_conv2d_only_where_it_computes_the_same_form():
    """VGG16's and AlexNet's convolutions (AlexNet's first with stride 4) take the tuned path; a form conv2d
    does not compute (uneven padding, dilation, groups) falls back to Flax's own, with the same values."""
    from jax_impl.kernels.conv import Conv

    for net in (VGG16, AlexNet):
        convs = net(num_classes=10, kernels="tuned", rngs=nnx.Rngs(0)).features
        assert all(type(c) is Conv and c._square_geometry() is not None for c in convs)
    x = jax.random.normal(jax.random.key(1), (2, 9, 9, 4))
    for form in (dict(padding=((1, 2), (1, 1))), dict(padding="SAME"), dict(kernel_dilation=2),
                 dict(feature_group_count=2), dict(strides=(1, 2))):
        tuned = Conv(4, 6, (3, 3), **form, rngs=nnx.Rngs(0))
        stock = nnx.Conv(4, 6, (3, 3), **form, rngs=nnx.Rngs(0))
        assert tuned._square_geometry() is None, form
        np.testing.assert_array_equal(tuned(x), stock(x))
    tuned, stock = Conv(4, 6, (3, 3), strides=2, padding=1, rngs=nnx.Rngs(0)), nnx.Conv(4, 6, (3, 3), strides=2,
                                                                                    padding=1, rngs=nnx.Rngs(0))
    assert tuned._square_geometry() == (2, 1)
    np.testing.assert_allclose(tuned(x), stock(x), rtol=0, atol=1e-6)
