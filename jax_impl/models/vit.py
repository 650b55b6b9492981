"""A Vision Transformer written from scratch in Flax NNX, the twin of ``torch_ref.models.ViT``.

patch_embed (conv, kernel = stride = patch) -> tokens, + cls_token, + pos_embed
-> dropout -> blocks[i]: x + attn(norm1(x)), then x + mlp(norm2(x))  (pre-LN)
-> norm -> the class token -> head

Attention is written out (q, k, v, scaled dot product, softmax, proj) so every
weight maps one to one onto the PyTorch twin, whose attribute names and
parameter shapes this mirrors (kernels in Flax layout: HWIO, (in, out)). The
defaults that differ between the frameworks are fixed the same in both:
LayerNorm epsilon 1e-6 with the two-pass variance, exact (erf) GELU, weights
from a normal of std 0.02 truncated at +-2 std, biases 0, LayerNorm scale 1,
class token 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jax_impl import kernels as kernel_choice
from jax_impl.kernels import attention
from mnist_common.architectures import DEFAULT_VIT_VARIANT as DEFAULT_VARIANT
from mnist_common.architectures import VIT_VARIANTS as VARIANTS
from mnist_common.architectures import ViTConfig

LN_EPS = 1e-6
INIT_STD = 0.02
weight_init = nnx.initializers.truncated_normal(INIT_STD)  # N(0, 0.02^2) cut at +-2 std


def _linear(layers, d_in: int, d_out: int, dtype, rngs: nnx.Rngs) -> nnx.Linear:
    return layers.Linear(d_in, d_out, kernel_init=weight_init, bias_init=nnx.initializers.zeros, dtype=dtype,
                         rngs=rngs)


def _layer_norm(layers, d: int, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """In float32 whatever the model's dtype, as PyTorch's autocast keeps ``layer_norm``."""
    return layers.LayerNorm(d, epsilon=LN_EPS, use_fast_variance=False, rngs=rngs)


def _attend(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
    """``softmax(q @ k^T / sqrt(D/H)) @ v`` over ``[B, H, T, D/H]``: the products in the inputs' dtype, the softmax
    in float32 at least."""
    scores = q @ k.transpose(0, 1, 3, 2) / jnp.sqrt(jnp.asarray(q.shape[-1], q.dtype))  # [B, H, T, T]
    weights = jax.nn.softmax(scores.astype(jnp.promote_types(scores.dtype, jnp.float32)), axis=-1)
    return weights.astype(v.dtype) @ v


class Attention(nnx.Module):
    """Multi-head self-attention with separate q, k, v projections: ``[B, T, D] -> [B, T, D]``.

    Tuned (``kernels="tuned"``): the three projections as one product (:meth:`projections`) and, for up to 32
    tokens, attention with a gradient laid out for XLA CPU (``jax_impl.kernels.attention``).
    The products run in ``dtype``, the softmax in float32 (as PyTorch's autocast runs them).
    """

    def __init__(self, width: int, heads: int, *, dropout: float, kernels: str = "stock", dtype=None,
                 rngs: nnx.Rngs):
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        layers = kernel_choice.layers(kernels)
        self.heads = heads
        self.tuned = kernels == "tuned"
        self.q = _linear(layers, width, width, dtype, rngs)
        self.k = _linear(layers, width, width, dtype, rngs)
        self.v = _linear(layers, width, width, dtype, rngs)
        self.proj = _linear(layers, width, width, dtype, rngs)
        self.dropout = layers.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, d = x.shape
        q, k, v = self.projections(x)  # each [B, H, T, D/H]
        if self.tuned and attention.applies(t):
            out = attention.attend(q, k, v, 1 / (d // self.heads) ** 0.5)
        else:
            out = _attend(q, k, v)  # [B, H, T, D/H]
        out = out.transpose(0, 2, 1, 3).reshape(b, t, d)  # [B, T, H, D/H] -> [B, T, D]
        return self.dropout(self.proj(out))

    def projections(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``q(x), k(x), v(x)`` for tokens ``[B, T, D]``, each split into heads ``[B, H, T, D/H]``. Tuned: one
        ``[B*T, D] x [D, 3D]`` product of the three kernels, concatenated at call time (the parameters stay
        separate, as in PyTorch): one pass over the tokens instead of three."""
        b, t, d = x.shape
        h = self.heads
        if not self.tuned:
            return tuple(y.reshape(b, t, h, d // h).transpose(0, 2, 1, 3) for y in (self.q(x), self.k(x), self.v(x)))
        kernel = jnp.concatenate([self.q.kernel[...], self.k.kernel[...], self.v.kernel[...]], axis=1)  # [D, 3D]
        bias = jnp.concatenate([self.q.bias[...], self.k.bias[...], self.v.bias[...]])
        x = x.reshape(b * t, d)
        if self.q.dtype is not None:  # the products' precision (bfloat16), else the inputs' own
            x, kernel, bias = (a.astype(self.q.dtype) for a in (x, kernel, bias))
        out = (x @ kernel + bias).reshape(b, t, 3, h, d // h)  # [B, T, 3, H, D/H]
        return tuple(out[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # each [B, H, T, D/H]


class MLP(nnx.Module):
    """fc1 -> exact GELU -> dropout -> fc2 -> dropout: ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, width: int, mlp_dim: int, *, dropout: float, kernels: str = "stock", dtype=None,
                 rngs: nnx.Rngs):
        layers = kernel_choice.layers(kernels)
        self.fc1 = _linear(layers, width, mlp_dim, dtype, rngs)
        self.fc2 = _linear(layers, mlp_dim, width, dtype, rngs)
        self.dropout = layers.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.dropout(nnx.gelu(self.fc1(x), approximate=False))
        return self.dropout(self.fc2(x))


class Block(nnx.Module):
    """Pre-LayerNorm encoder block."""

    def __init__(self, cfg: ViTConfig, *, dropout: float, kernels: str = "stock", dtype=None,
                 rngs: nnx.Rngs):
        layers = kernel_choice.layers(kernels)
        self.norm1 = _layer_norm(layers, cfg.width, rngs)
        self.attn = Attention(cfg.width, cfg.heads, dropout=dropout, kernels=kernels, dtype=dtype, rngs=rngs)
        self.norm2 = _layer_norm(layers, cfg.width, rngs)
        self.mlp = MLP(cfg.width, cfg.mlp_dim, dropout=dropout, kernels=kernels, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nnx.Module):
    """ViT classifier: float NHWC ``[B, 28, 28, 1]`` -> logits ``[B, 10]``.

    ``kernels`` as for ``CNN`` (``"auto"``: the XLA-CPU layers on the CPU backend,
    Flax's own elsewhere; resolved into ``model.kernels``). ``dtype``: the products'
    computation (``jnp.bfloat16``: mixed precision; None: the parameters' own); LayerNorm,
    softmax, the residual stream and the parameters stay in float32 (or wider), as under
    PyTorch's bfloat16 autocast.
    ``model(x, return_intermediates=True)`` returns ``(logits, dict)`` with
    ``embeddings`` ``[B, T, D]`` (after position embeddings), ``block_<i>``
    ``[B, T, D]`` and ``pre_logits`` ``[B, D]``, for block-by-block checks.
    """

    #: Build it eagerly rather than in one compiled call (``jax_impl.models.init.initialized``): eagerly, its
    #: identical blocks reuse each initialiser's compilation; compiled whole, XLA compiles every block's draws
    #: (docs/performance.md, "Drawing the initial weights").
    compiled_init = False

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
        kernels: str = "auto",
        dtype: jnp.dtype | None = None,
        rngs: nnx.Rngs,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"unknown ViT variant {variant!r} (choose from {', '.join(VARIANTS)})")
        cfg = self.config = VARIANTS[variant]
        if image_size % cfg.patch:
            raise ValueError(f"image size {image_size} is not divisible by patch {cfg.patch}")
        self.variant = variant
        self.num_classes, self.image_size = num_classes, image_size
        self.kernels = kernel_choice.resolve(kernels)
        self.dtype = dtype
        layers = kernel_choice.layers(self.kernels)
        tokens = (image_size // cfg.patch) ** 2 + 1
        self.patch_embed = nnx.Conv(
            in_channels, cfg.width, kernel_size=(cfg.patch, cfg.patch), strides=(cfg.patch, cfg.patch),
            padding="VALID", kernel_init=weight_init, bias_init=nnx.initializers.zeros, dtype=dtype, rngs=rngs,
        )
        self.cls_token = nnx.Param(jnp.zeros((1, 1, cfg.width)))
        self.pos_embed = nnx.Param(weight_init(rngs.params(), (1, tokens, cfg.width)))
        self.dropout = layers.Dropout(dropout, rngs=rngs)
        self.blocks = nnx.List([Block(cfg, dropout=dropout, kernels=self.kernels, dtype=dtype, rngs=rngs)
                                for _ in range(cfg.depth)])
        self.norm = _layer_norm(layers, cfg.width, rngs)
        self.head = _linear(layers, cfg.width, num_classes, dtype, rngs)

    def forward_features(self, x: jax.Array, intermediates: dict | None = None) -> jax.Array:
        x = self.patch_embed(x)  # [B, H/p, W/p, D]
        b, gh, gw, d = x.shape
        x = x.reshape(b, gh * gw, d)  # [B, N, D], patches in row-major order
        cls = jnp.broadcast_to(self.cls_token[...], (b, 1, d))
        x = jnp.concatenate([cls, x], axis=1) + self.pos_embed[...]  # [B, N+1, D], float32 (the residual stream)
        if intermediates is not None:
            intermediates["embeddings"] = x
        x = self.dropout(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if intermediates is not None:
                intermediates[f"block_{i}"] = x
        return self.norm(x)

    def forward_head(self, x: jax.Array, intermediates: dict | None = None) -> jax.Array:
        x = x[:, 0]  # [B, D], the class token
        if intermediates is not None:
            intermediates["pre_logits"] = x
        return self.head(x)  # [B, num_classes]

    def __call__(self, x: jax.Array, return_intermediates: bool = False):
        intermediates = {} if return_intermediates else None
        logits = self.forward_head(self.forward_features(x, intermediates), intermediates)
        return (logits, intermediates) if return_intermediates else logits
