"""Flax NNX models; each takes float NHWC images and returns logits.

``kernels="auto" | "stock" | "tuned"`` picks plain Flax layers or the XLA-CPU
fast paths of ``jax_impl.kernels`` (same parameters, same values).
"""

from jax_impl.models.cnn import CNN, count_params
from jax_impl.models.export import load, save
from jax_impl.models.vit import VARIANTS as VIT_VARIANTS
from jax_impl.models.vit import ViT

__all__ = ["CNN", "ViT", "VIT_VARIANTS", "count_params", "load", "save"]
