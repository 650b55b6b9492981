"""VGG16 and AlexNet from torchvision, adapted to MNIST and fine-tuned for 10 classes.

The model takes the same input as every other PyTorch model here (MNIST,
normalised with the MNIST mean/std, ``[B, 1, 28, 28]``), so the shared
``torch_ref.train`` loop trains it unchanged. Its first layer undoes the
MNIST normalisation, resizes to ``image_size``, repeats the grey channel
three times and normalises with the mean/std of the weights' own transforms
(ImageNet's). The resize happens per batch on the device: a 224 px RGB copy
of the training set would need 36 GB.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from mnist_common import MNIST_MEAN, MNIST_STD
from mnist_common.architectures import MIN_IMAGE_SIZE
from torch_ref.finetune import weights as weights_lib

NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class Arch:
    builder: object  # torchvision.models.<name>
    weights: object  # the enum member --weights pretrained means


ARCHS = {
    "vgg16": Arch(torchvision.models.vgg16, torchvision.models.VGG16_Weights.IMAGENET1K_V1),
    "alexnet": Arch(torchvision.models.alexnet, torchvision.models.AlexNet_Weights.IMAGENET1K_V1),
}


def check_image_size(arch: str, image_size: int) -> None:
    """ValueError when ``image_size`` is below what ``arch`` accepts (``mnist_common.architectures``)."""
    minimum = MIN_IMAGE_SIZE[arch]
    if image_size < minimum:
        raise ValueError(f"{arch} needs --image-size >= {minimum} px, got {image_size}")


class MNISTClassifier(nn.Module):
    """MNIST-normalised ``[B, 1, 28, 28]`` -> ``[B, 3, S, S]`` ImageNet-normalised -> torchvision net."""

    def __init__(self, net: nn.Module, image_size: int, mean, std):
        super().__init__()
        self.net = net
        self.image_size = image_size
        self.mean, self.std = tuple(mean), tuple(std)  # made in the input's dtype per batch: exact in float64 too

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * MNIST_STD + MNIST_MEAN  # back to pixel values in [0, 1]
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = x.expand(-1, 3, -1, -1)  # [B, 1, S, S] -> [B, 3, S, S]: grey as RGB
        mean, std = (x.new_tensor(v).view(1, 3, 1, 1) for v in (self.mean, self.std))
        return self.net((x - mean) / std)


def _replace_head(net: nn.Module, num_classes: int) -> None:
    last = net.classifier[-1]  # Linear(4096, 1000) in both VGG16 and AlexNet
    net.classifier[-1] = nn.Linear(last.in_features, num_classes)


def build(arch: str, *, weights: str = "auto", image_size: int = 224, freeze_features: bool = False,
          num_classes: int = NUM_CLASSES, progress: bool = True) -> MNISTClassifier:
    """A torchvision classifier with a ``num_classes`` head, initialised as ``weights`` says.

    The head is new (random) unless the state dict already has ``num_classes``
    outputs (a checkpoint of this fine-tuning); an ImageNet state dict (1000
    outputs) loads into the original architecture before its head is replaced.
    ``model.weights_info`` says what was loaded.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown classifier {arch!r} (choose from {', '.join(ARCHS)})")
    check_image_size(arch, image_size)
    spec = ARCHS[arch]
    state, info = weights_lib.resolve(weights, spec.weights, progress=progress)
    net = spec.builder(weights=None)  # 1000 classes; nothing downloads here
    head_key = f"classifier.{len(net.classifier) - 1}.weight"
    if state is not None and head_key in state and state[head_key].shape[0] == num_classes:
        _replace_head(net, num_classes)
        weights_lib.load_matching(net, state, info.name)
    else:
        if state is not None:
            weights_lib.load_matching(net, state, info.name)
        _replace_head(net, num_classes)
    if freeze_features:
        net.features.requires_grad_(False)
    transforms = spec.weights.transforms()  # the normalisation the pretrained weights expect
    model = MNISTClassifier(net, image_size, transforms.mean, transforms.std)
    model.weights_info = info
    return model


def vgg16(**kwargs) -> MNISTClassifier:
    return build("vgg16", **kwargs)


def alexnet(**kwargs) -> MNISTClassifier:
    return build("alexnet", **kwargs)
