"""Fast paths for XLA's CPU backend, beside the plain Flax layers they replace.

The models in ``jax_impl.models`` are written with stock Flax layers. Built
with ``kernels="tuned"`` they run these instead: the same parameters and the
same mathematics (tested equal, logits and gradients), laid out for what XLA
CPU compiles well. ``"auto"`` (the default) means tuned on the CPU backend,
where they were measured faster, and stock elsewhere. What each one gained,
and how it was measured: ``docs/performance.md``.

* :mod:`~jax_impl.kernels.conv`: the CNN's first block fused into one loop,
  convolution gradients in Eigen's canonical layout, maps smaller than the kernel as one
  product (``Conv``: VGG16's and AlexNet's convolutions), the bias gradient as a product;
* :mod:`~jax_impl.kernels.pooling`: max pooling with PyTorch's first-maximum gradient;
* :mod:`~jax_impl.kernels.dropout`: dropout masks from 16-bit random numbers;
* :mod:`~jax_impl.kernels.threefry`: those random numbers, ``jax.random.bits``'s, in one fused pass;
* :mod:`~jax_impl.kernels.flat`: dense layers and LayerNorm on flattened tokens, their sums as products;
* :mod:`~jax_impl.kernels.attention`: attention whose gradient's products XLA hands to YNNPACK.

The models make the choice where a layer or block differs (timm's ``fused_attn``
is the pattern): ``CNN.block``, ``Attention.projections`` and ``Attention``'s
attention; each reads its own parameters, and the rest of the model is plain Flax.
VGG16 and AlexNet build their layers from :func:`layers`, the classes for a choice.
"""

from __future__ import annotations

import types

import jax
from flax import nnx

from jax_impl.kernels import conv, dropout, flat, pooling
from mnist_common.config import KERNELS  # the choices of the models' ``kernels`` and the runner's ``--kernels``


def resolve(kernels: str) -> str:
    """``"auto"`` -> ``"tuned"`` on the CPU backend, else ``"stock"``; ``"stock"``/``"tuned"`` unchanged."""
    if kernels not in KERNELS:
        raise ValueError(f"unknown kernels {kernels!r} (choose from {', '.join(KERNELS)})")
    if kernels == "auto":
        return "tuned" if jax.default_backend() == "cpu" else "stock"
    return kernels


def _stock_max_pool(x: jax.Array, window: int) -> jax.Array:
    return nnx.max_pool(x, (window, window), strides=(window, window))


def layers(kernels: str) -> types.SimpleNamespace:
    """What a model builds for a resolved choice: the layer classes ``Conv``, ``Linear``, ``LayerNorm``,
    ``Dropout``, and ``max_pool(x, window)`` (non-overlapping NHWC pooling).

    Stock: Flax's own. Tuned: subclasses with the same parameters, arguments and modes, and
    :func:`~jax_impl.kernels.pooling.max_pool` (PyTorch's gradient at ties).
    """
    if kernels == "stock":
        return types.SimpleNamespace(Conv=nnx.Conv, Linear=nnx.Linear, LayerNorm=nnx.LayerNorm, Dropout=nnx.Dropout,
                                     max_pool=_stock_max_pool)
    return types.SimpleNamespace(Conv=conv.Conv, Linear=flat.Linear, LayerNorm=flat.LayerNorm,
                                 Dropout=dropout.Dropout, max_pool=pooling.max_pool)
