"""Flax NNX models; each takes float NHWC images and returns logits."""

from jax_impl.models.cnn import CNN, count_params

__all__ = ["CNN", "count_params"]
