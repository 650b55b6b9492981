"""Flax NNX models; each takes float NHWC images and returns logits.

``VGG16`` and ``AlexNet`` are torchvision's (RGB input, ImageNet-normalised);
``MNISTClassifier`` reads MNIST into them as the PyTorch side does.

``kernels="auto" | "stock" | "tuned"`` picks plain Flax layers or the XLA-CPU
fast paths of ``jax_impl.kernels`` (same parameters, same values).
"""

from jax_impl.models.alexnet import AlexNet
from jax_impl.models.cnn import CNN, count_params
from jax_impl.models.export import load, load_weights, save
from jax_impl.models.imagenet import MNISTClassifier
from jax_impl.models.vgg import VGG16
from jax_impl.models.vit import VARIANTS as VIT_VARIANTS
from jax_impl.models.vit import ViT

__all__ = ["AlexNet", "CNN", "MNISTClassifier", "VGG16", "ViT", "VIT_VARIANTS", "count_params", "load", "load_weights",
           "save"]
