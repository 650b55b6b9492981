"""Facts about the architectures that every layer of the project needs, with no framework: the ViT's
variants table (both twins build from it), what input the torchvision architectures accept and which
initial weights a run may ask for."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    width: int  # token dimension D
    depth: int  # encoder blocks
    heads: int  # attention heads; D must divide by it
    mlp_dim: int  # hidden size of each block's MLP
    patch: int  # patch side; the image side must divide by it


#: The ViT's sizes, name -> shape, for both frameworks. "tiny/4" is the public 210k-parameter MNIST ViT's shape.
VIT_VARIANTS = {
    "tiny/7": ViTConfig(width=64, depth=6, heads=4, mlp_dim=128, patch=7),
    "tiny/4": ViTConfig(width=64, depth=6, heads=4, mlp_dim=128, patch=4),
    "small/4": ViTConfig(width=128, depth=6, heads=8, mlp_dim=256, patch=4),
}
DEFAULT_VIT_VARIANT = "tiny/7"

#: ``--weights`` choices besides a file path: the pretrained enum, random init, or pretrained-if-available.
WEIGHTS_CHOICES = ("auto", "pretrained", "none")

#: Smallest input side each architecture accepts. VGG16: five 2x2 max pools, below 32 px the last
#: sees an empty map; AlexNet: conv 11/4 then three 3/2 pools, below 63 px one sees less than 3x3;
#: Faster R-CNN: its backbones downsample 32x, below that the top feature map is empty.
MIN_IMAGE_SIZE = {"vgg16": 32, "alexnet": 63, "faster_rcnn": 32}

#: The input statistics of torchvision's ImageNet weights for VGG16 and AlexNet (their transforms' mean and std,
#: RGB): both frameworks normalise the adapted MNIST images with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
