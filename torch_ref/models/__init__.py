"""PyTorch models; each takes float NCHW images and returns logits."""

from torch_ref.models.cnn import CNN, count_params
from torch_ref.models.export import load, load_weights, save
from torch_ref.models.vit import VARIANTS as VIT_VARIANTS
from torch_ref.models.vit import ViT

__all__ = ["CNN", "ViT", "VIT_VARIANTS", "count_params", "load", "load_weights", "save"]
