"""PyTorch models; each takes float NCHW images and returns logits."""

from torch_ref.models.cnn import CNN, count_params

__all__ = ["CNN", "count_params"]
