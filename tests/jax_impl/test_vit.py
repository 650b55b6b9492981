"""The Flax ViT: shapes per variant, written-out attention, intermediates, training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from harness.data import train_val_split
from jax_impl import train
from jax_impl.models import VIT_VARIANTS, ViT, count_params
from jax_impl.models.vit import Attention
from mnist_common import TrainConfig


@pytest.mark.parametrize("variant", list(VIT_VARIANTS))
def test_output_and_intermediate_shapes(variant):
    cfg = VIT_VARIANTS[variant]
    model = ViT(variant, rngs=nnx.Rngs(0))
    logits, inter = model(jnp.zeros((2, 28, 28, 1)), return_intermediates=True)
    tokens = (28 // cfg.patch) ** 2 + 1
    assert logits.shape == (2, 10)
    assert inter["embeddings"].shape == (2, tokens, cfg.width)
    assert [k for k in inter if k.startswith("block_")] == [f"block_{i}" for i in range(cfg.depth)]
    assert all(inter[f"block_{i}"].shape == (2, tokens, cfg.width) for i in range(cfg.depth))
    assert inter["pre_logits"].shape == (2, cfg.width)


def test_default_variant_and_bad_arguments():
    assert ViT(rngs=nnx.Rngs(0)).variant == "tiny/7"
    with pytest.raises(ValueError, match="unknown ViT variant"):
        ViT("huge/1", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="not divisible by patch"):
        ViT("tiny/4", image_size=30, rngs=nnx.Rngs(0))


def _naive_attention(attn: Attention, x: np.ndarray) -> np.ndarray:
    """Per example, per head, per query: softmax(q.k / sqrt(d)) weighted sum of v, in float64."""
    w = {n: (np.asarray(getattr(attn, n).kernel[...], np.float64), np.asarray(getattr(attn, n).bias[...], np.float64))
         for n in ("q", "k", "v", "proj")}
    b, t, d = x.shape
    h, dh = attn.heads, d // attn.heads
    out = np.zeros((b, t, d))
    for i in range(b):
        q, k, v = (x[i] @ w[n][0] + w[n][1] for n in ("q", "k", "v"))
        for head in range(h):
            cols = slice(head * dh, (head + 1) * dh)
            for r in range(t):
                scores = np.array([q[r, cols] @ k[c, cols] for c in range(t)]) / np.sqrt(dh)
                p = np.exp(scores - scores.max())
                p /= p.sum()
                out[i, r, cols] = sum(p[c] * v[c, cols] for c in range(t))
    return out @ w["proj"][0] + w["proj"][1]


def test_attention_matches_a_naive_reference():
    attn = Attention(16, 4, dropout=0.0, rngs=nnx.Rngs(3))
    x = np.asarray(jax.random.normal(jax.random.key(1), (2, 5, 16)), np.float64)
    np.testing.assert_allclose(attn(jnp.asarray(x, jnp.float32)), _naive_attention(attn, x), rtol=1e-4, atol=1e-5)


def decayed_by_adamw(model) -> set[str]:
    """Names of the parameters one AdamW step moves when every gradient is zero (only decay acts)."""
    from jax_impl.optim import make_optimizer

    tx, _ = make_optimizer("adamw", 0.1, model=model, weight_decay=0.5)
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    before = {p: np.array(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    opt.update(model, jax.tree.map(jnp.zeros_like, nnx.state(model, nnx.Param)))
    after = {p: np.asarray(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    return {".".join(map(str, p)) for p in before if not np.array_equal(before[p], after[p])}


def test_weight_decay_spares_norms_biases_and_embeddings():
    decayed = decayed_by_adamw(ViT(rngs=nnx.Rngs(0)))
    assert {"blocks.0.attn.q.kernel", "head.kernel", "patch_embed.kernel", "blocks.5.mlp.fc2.kernel"} <= decayed
    assert not decayed & {"cls_token", "pos_embed", "blocks.0.norm1.scale", "blocks.0.attn.q.bias", "norm.bias"}
    assert all(name.endswith("kernel") for name in decayed)


def test_train_step_lowers_the_loss(mnist):
    model = ViT(rngs=nnx.Rngs(0))
    images, labels = mnist.train_images[:256], mnist.train_labels[:256]
    before = train.evaluate(model, images, labels)["loss"]
    config = TrainConfig(epochs=6, batch_size=64, optimizer="adamw", lr=2e-3, weight_decay=0.05, label_smoothing=0.1)
    train.fit(model, images, labels, config, progress=False)
    assert train.evaluate(model, images, labels)["loss"] < 0.8 * before


@pytest.mark.slow  # end to end; the default suite covers the parts
def test_short_run_reaches_nontrivial_accuracy(mnist):
    split = train_val_split(60000, val_size=1000, train_size=4000)
    model = ViT(rngs=nnx.Rngs(0))
    config = TrainConfig(epochs=6, batch_size=64, optimizer="adamw", lr=2e-3, weight_decay=0.05, schedule="cosine",
                         warmup_steps=20)
    train.fit(model, mnist.train_images[split.train], mnist.train_labels[split.train], config, progress=False)
    accuracy = train.evaluate(model, mnist.test_images[:2000], mnist.test_labels[:2000])["accuracy"]
    assert accuracy >= 0.6, accuracy
    assert count_params(model) == 205962
