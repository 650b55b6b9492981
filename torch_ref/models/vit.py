"""A Vision Transformer written from scratch in PyTorch: the twin of ``jax_impl.models.vit.ViT``.

patch_embed (conv, kernel = stride = patch) -> tokens, + cls_token, + pos_embed
-> dropout -> blocks[i]: x + attn(norm1(x)), then x + mlp(norm2(x))  (pre-LN)
-> norm -> the class token -> head

No ``nn.MultiheadAttention`` or ``nn.TransformerEncoder``: q, k, v, the scaled
dot product, softmax and proj are written out so each weight maps one to one
onto the Flax model. The defaults are the Flax model's, set explicitly:
LayerNorm eps 1e-6, exact GELU, weights from a normal of std 0.02 truncated
at +-2 std (Flax's ``truncated_normal``), biases 0, class token 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mnist_common.architectures import DEFAULT_VIT_VARIANT as DEFAULT_VARIANT
from mnist_common.architectures import VIT_VARIANTS as VARIANTS
from mnist_common.architectures import ViTConfig

LN_EPS = 1e-6
INIT_STD = 0.02


def trunc_normal_(tensor: torch.Tensor, std: float = INIT_STD) -> torch.Tensor:
    """Flax's ``truncated_normal(std)``: a normal of std ``std`` cut at +-2 std.

    ``torch.nn.init.trunc_normal_`` takes absolute bounds (default +-2, which
    for std 0.02 cuts nothing), so the bounds are given explicitly.
    """
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2 * std, b=2 * std)


def _linear(d_in: int, d_out: int) -> nn.Linear:
    layer = nn.Linear(d_in, d_out)
    trunc_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Attention(nn.Module):
    """Multi-head self-attention with separate q, k, v projections."""

    def __init__(self, width: int, heads: int, *, dropout: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.q = _linear(width, width)
        self.k = _linear(width, width)
        self.v = _linear(width, width)
        self.proj = _linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads

        def split(y):  # [B, T, D] -> [B, H, T, D/H]
            return y.reshape(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)  # [B, H, T, T]
        weights = scores.softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, t, d)  # [B, T, D]
        return self.dropout(self.proj(out))


class MLP(nn.Module):
    def __init__(self, width: int, mlp_dim: int, *, dropout: float):
        super().__init__()
        self.fc1 = _linear(width, mlp_dim)
        self.fc2 = _linear(mlp_dim, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(F.gelu(self.fc1(x), approximate="none"))
        return self.dropout(self.fc2(x))


class Block(nn.Module):
    """Pre-LayerNorm encoder block."""

    def __init__(self, cfg: ViTConfig, *, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.attn = Attention(cfg.width, cfg.heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.mlp = MLP(cfg.width, cfg.mlp_dim, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """ViT classifier; takes float NCHW ``[B, 1, 28, 28]``, returns logits ``[B, 10]``.

    ``model(x, return_intermediates=True)`` returns ``(logits, dict)`` with the
    same keys as the Flax model: ``embeddings``, ``block_<i>``, ``pre_logits``.
    """

    #: parameters kept out of weight decay besides norms and biases
    no_weight_decay = ("cls_token", "pos_embed")

    def __init__(
        self,
        variant: str = DEFAULT_VARIANT,
        *,
        num_classes: int = 10,
        image_size: int = 28,
        in_channels: int = 1,
        dropout: float = 0.1,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown ViT variant {variant!r} (choose from {', '.join(VARIANTS)})")
        cfg = self.config = VARIANTS[variant]
        if image_size % cfg.patch:
            raise ValueError(f"image size {image_size} is not divisible by patch {cfg.patch}")
        self.variant = variant
        self.num_classes, self.image_size = num_classes, image_size
        tokens = (image_size // cfg.patch) ** 2 + 1
        self.patch_embed = nn.Conv2d(in_channels, cfg.width, cfg.patch, stride=cfg.patch)
        trunc_normal_(self.patch_embed.weight)
        nn.init.zeros_(self.patch_embed.bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos_embed = nn.Parameter(trunc_normal_(torch.empty(1, tokens, cfg.width)))
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(cfg, dropout=dropout) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.head = _linear(cfg.width, num_classes)

    def forward_features(self, x: torch.Tensor, intermediates: dict | None = None) -> torch.Tensor:
        x = self.patch_embed(x)  # [B, D, H/p, W/p]
        x = x.flatten(2).transpose(1, 2)  # [B, N, D], patches in row-major order
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # [B, N+1, D]
        if intermediates is not None:
            intermediates["embeddings"] = x
        x = self.dropout(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if intermediates is not None:
                intermediates[f"block_{i}"] = x
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, intermediates: dict | None = None) -> torch.Tensor:
        x = x[:, 0]  # [B, D], the class token
        if intermediates is not None:
            intermediates["pre_logits"] = x
        return self.head(x)  # [B, num_classes]

    def forward(self, x: torch.Tensor, return_intermediates: bool = False):
        intermediates = {} if return_intermediates else None
        logits = self.forward_head(self.forward_features(x, intermediates), intermediates)
        return (logits, intermediates) if return_intermediates else logits
