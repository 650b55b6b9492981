"""The PyTorch ViT: shapes per variant, written-out attention, initialisation, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.data import train_val_split
from mnist_common import TrainConfig
from torch_ref import train
from torch_ref.models import VIT_VARIANTS, ViT
from torch_ref.models.vit import Attention
from torch_ref.optim import parameter_groups


@pytest.mark.parametrize("variant", list(VIT_VARIANTS))
def test_output_and_intermediate_shapes(variant):
    cfg = VIT_VARIANTS[variant]
    logits, inter = ViT(variant)(torch.zeros(2, 1, 28, 28), return_intermediates=True)
    tokens = (28 // cfg.patch) ** 2 + 1
    assert logits.shape == (2, 10)
    assert inter["embeddings"].shape == (2, tokens, cfg.width)
    assert [k for k in inter if k.startswith("block_")] == [f"block_{i}" for i in range(cfg.depth)]
    assert inter["pre_logits"].shape == (2, cfg.width)


def test_no_black_box_attention_modules():
    kinds = {type(m).__name__ for m in ViT().modules()}
    assert not kinds & {"MultiheadAttention", "TransformerEncoder", "TransformerEncoderLayer"}


def test_attention_matches_torch_scaled_dot_product():
    torch.manual_seed(0)
    attn = Attention(16, 4, dropout=0.0).eval()
    x = torch.randn(2, 5, 16)
    q, k, v = (getattr(attn, n)(x).reshape(2, 5, 4, 4).transpose(1, 2) for n in ("q", "k", "v"))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 5, 16)
    torch.testing.assert_close(attn(x), attn.proj(ref), rtol=1e-5, atol=1e-6)


def test_initialisation_matches_the_flax_definition():
    torch.manual_seed(0)
    model = ViT("small/4")
    w = model.blocks[0].mlp.fc1.weight.detach()
    assert w.abs().max() <= 0.04 + 1e-7  # cut at 2 std
    assert 0.85 * 0.02 < w.std() < 0.9 * 0.02  # std of N(0, 0.02) truncated at 2 std: 0.88 * 0.02
    assert model.cls_token.abs().max() == 0 and model.blocks[0].attn.q.bias.abs().max() == 0
    assert model.norm.eps == 1e-6


def test_parameter_groups_spare_norms_biases_and_embeddings():
    model = ViT()
    decay, no_decay = parameter_groups(model, 0.05)
    ids = {id(p) for p in decay["params"]}
    assert id(model.blocks[0].attn.q.weight) in ids and id(model.patch_embed.weight) in ids
    assert not ids & {id(model.cls_token), id(model.pos_embed), id(model.norm.weight), id(model.head.bias)}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0


def test_train_step_lowers_the_loss(mnist):
    torch.manual_seed(0)
    model = ViT()
    images, labels = mnist.train_images[:256], mnist.train_labels[:256]
    before = train.evaluate(model, images, labels)["loss"]
    config = TrainConfig(epochs=6, batch_size=64, optimizer="adamw", lr=2e-3, weight_decay=0.05, label_smoothing=0.1)
    train.fit(model, images, labels, config, progress=False)
    assert train.evaluate(model, images, labels)["loss"] < 0.8 * before


@pytest.mark.slow  # end to end; the default suite covers the parts
def test_short_run_reaches_nontrivial_accuracy(mnist):
    split = train_val_split(60000, val_size=1000, train_size=4000)
    torch.manual_seed(0)
    model = ViT()
    config = TrainConfig(epochs=6, batch_size=64, optimizer="adamw", lr=2e-3, weight_decay=0.05, schedule="cosine",
                         warmup_steps=20)
    train.fit(model, mnist.train_images[split.train], mnist.train_labels[split.train], config, progress=False)
    accuracy = train.evaluate(model, mnist.test_images[:2000], mnist.test_labels[:2000])["accuracy"]
    assert accuracy >= 0.6, accuracy
    assert np.isfinite(accuracy)
