"""The Flax and PyTorch CNNs are twins: names, shapes and counts, learning-rate curves."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
from flax import nnx

import jax_impl.models
import jax_impl.optim
import jax_impl.train
import torch_ref.models
import torch_ref.optim
import torch_ref.train


def _flax_params(model) -> dict[str, tuple]:
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return {".".join(map(str, path)): tuple(v.get_value().shape) for path, v in flat}


def _to_torch_layout(name: str, shape: tuple) -> tuple:
    """Flax kernel shape in PyTorch's layout: HWIO -> OIHW, (in, out) -> (out, in)."""
    if name.endswith("kernel"):
        return tuple(shape[i] for i in (3, 2, 0, 1)) if len(shape) == 4 else shape[::-1]
    return shape


def _torch_name(flax_name: str) -> str:
    head, _, leaf = flax_name.rpartition(".")
    leaf = {"kernel": "weight", "scale": "weight"}.get(leaf, leaf)
    return f"{head}.{leaf}" if head else leaf


TWINS = [("cnn", {}), ("vit", {"variant": "tiny/7"}), ("vit", {"variant": "tiny/4"}), ("vit", {"variant": "small/4"})]


@pytest.mark.parametrize("model,kwargs", TWINS, ids=[f"{m}-{k.get('variant', '')}" for m, k in TWINS])
def test_parameter_names_shapes_and_counts_mirror(model, kwargs):
    cls = {"cnn": "CNN", "vit": "ViT"}[model]
    flax_model = getattr(jax_impl.models, cls)(**kwargs, rngs=nnx.Rngs(0))
    torch_model = getattr(torch_ref.models, cls)(**kwargs)
    as_torch = {_torch_name(k): _to_torch_layout(k, s) for k, s in _flax_params(flax_model).items()}
    assert as_torch == {k: tuple(v.shape) for k, v in torch_model.state_dict().items()}
    assert jax_impl.models.count_params(flax_model) == torch_ref.models.count_params(torch_model)


def test_both_vits_build_from_the_one_variants_table_the_registry_names():
    from harness.registry import MODELS
    from mnist_common.architectures import VIT_VARIANTS

    assert jax_impl.models.VIT_VARIANTS is VIT_VARIANTS is torch_ref.models.VIT_VARIANTS
    assert MODELS["vit"].variants == tuple(VIT_VARIANTS)


def test_weight_decay_covers_the_same_parameters():
    from jax_impl.optim import make_optimizer as make_jax_optimizer
    from torch_ref.optim import make_optimizer as make_torch_optimizer

    # With zero gradients one AdamW step moves only the parameters that decay.
    flax_model = jax_impl.models.ViT(rngs=nnx.Rngs(0))
    tx, _ = make_jax_optimizer("adamw", 0.1, model=flax_model, weight_decay=0.5)
    opt = nnx.Optimizer(flax_model, tx, wrt=nnx.Param)
    before = {p: np.array(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(flax_model, nnx.Param))}
    opt.update(flax_model, jax.tree.map(jax.numpy.zeros_like, nnx.state(flax_model, nnx.Param)))
    after = dict(nnx.to_flat_state(nnx.state(flax_model, nnx.Param)))
    flax_decayed = {_torch_name(".".join(map(str, p))) for p in before
                    if not np.array_equal(before[p], np.asarray(after[p].get_value()))}

    torch_model = torch_ref.models.ViT()
    topt, _ = make_torch_optimizer("adamw", torch_model, 0.1, weight_decay=0.5)
    before_t = {n: p.detach().clone() for n, p in torch_model.named_parameters()}
    for p in torch_model.parameters():
        p.grad = torch.zeros_like(p)
    topt.step()
    torch_decayed = {n for n, p in torch_model.named_parameters() if not torch.equal(before_t[n], p.detach())}
    assert flax_decayed == torch_decayed
    assert "blocks.0.attn.q.weight" in torch_decayed and "pos_embed" not in torch_decayed


def test_shift_augmentation_is_identical():
    from jax_impl.augment import shift_images as jax_shift
    from torch_ref.augment import shift_images as torch_shift

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 28, 28, 1)).astype(np.float32)
    shifts = np.array([[0, 0], [2, 0], [0, -2], [-1, 1], [2, 2], [-2, -1]], np.int8)
    out_j = np.asarray(jax_shift(x, shifts, 2, -0.5))
    out_t = torch_shift(torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.from_numpy(shifts), 2, -0.5)
    np.testing.assert_array_equal(out_j, out_t.numpy().transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(out_j[0], x[0])
    np.testing.assert_array_equal(out_j[1, 2:], x[1, :-2])  # content moved down two rows
    assert (out_j[1, :2] == -0.5).all()
    np.testing.assert_array_equal(out_j[2, :, :-2], x[2, :, 2:])  # moved left two columns


def test_label_smoothed_losses_agree():
    import optax

    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(8, 10)).astype(np.float32), rng.integers(0, 10, 8)
    ours = optax.softmax_cross_entropy(logits, optax.smooth_labels(np.eye(10)[labels], 0.1)).mean()
    theirs = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), label_smoothing=0.1)
    assert float(ours) == pytest.approx(theirs.item(), rel=1e-6)


@pytest.mark.parametrize("schedule,warmup", [("constant", 0), ("cosine", 0), ("cosine", 7)])
def test_learning_rate_curves_match_optax(schedule, warmup):
    total = 50
    optax_sched = jax_impl.optim.make_schedule(0.1, schedule=schedule, total_steps=total, warmup_steps=warmup)
    from mnist_common.schedules import schedule_factor

    torch_lrs = [0.1 * schedule_factor(t, schedule=schedule, total_steps=total, warmup_steps=warmup)
                 for t in range(total + 3)]
    np.testing.assert_allclose(torch_lrs, [float(optax_sched(t)) for t in range(total + 3)], rtol=1e-5, atol=1e-8)


def test_torch_scheduler_drives_the_optimizer_with_those_rates():
    model = torch.nn.Linear(2, 2)
    opt, sched = torch_ref.optim.make_optimizer("sgd", model, 0.1, schedule="cosine", total_steps=10,
                                                warmup_steps=2)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    optax_sched = jax_impl.optim.make_schedule(0.1, schedule="cosine", total_steps=10, warmup_steps=2)
    np.testing.assert_allclose(seen, [float(optax_sched(t)) for t in range(10)], rtol=1e-5, atol=1e-8)


def test_same_preprocessing_in_both_frameworks(mnist):
    images = mnist.test_images[:4]
    jx = np.asarray(jax_impl.train.preprocess(images))  # NHWC
    tx = torch_ref.train.preprocess(images, torch.device("cpu")).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(jx, tx)


def test_max_pool_gradient_matches_pytorch_even_with_ties():
    import jax
    import jax.numpy as jnp
    import torch
    import torch.nn.functional as F

    from jax_impl.kernels.pooling import max_pool

    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(4, 14, 14, 8)).astype(np.float32)  # values 0, 1, 2: ties everywhere
    g = rng.standard_normal((4, 7, 7, 8)).astype(np.float32)
    (dx_jax,) = jax.vjp(lambda v: max_pool(v, 2), jnp.asarray(x))[1](jnp.asarray(g))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)  # NHWC -> NCHW
    F.max_pool2d(xt, 2).backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(np.asarray(dx_jax), xt.grad.numpy().transpose(0, 2, 3, 1))


def test_both_fits_draw_the_same_batches_and_shifts_from_the_seed(mnist):
    """No orders given: each framework draws them (and the shifts) from config.seed. From the same weights,
    dropout off, SGD, the two trained models must then agree: different batches would part them at once."""
    from mnist_common import TrainConfig
    from parity.checks import build_pair
    from parity.convert import flax_params, table_for, torch_params, torch_to_flax_array

    flax_model, torch_model = build_pair("cnn", 0, dropout=0.0)
    config = TrainConfig(epochs=2, batch_size=64, optimizer="sgd", lr=0.05, augment_shift=2, seed=11)
    images, labels = mnist.train_images[:384], mnist.train_labels[:384]
    jax_result = jax_impl.train.fit(flax_model, images, labels, config, progress=False)
    torch_result = torch_ref.train.fit(torch_model, images, labels, config, progress=False)
    for a, b in zip(jax_result.history, torch_result.history):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
    theirs = torch_params(torch_model)
    ours = flax_params(flax_model)
    for row in table_for(flax_model, torch_model):
        np.testing.assert_allclose(ours[row.flax], torch_to_flax_array(row, theirs[row.torch]), rtol=0, atol=1e-4,
                                   err_msg=row.flax)
