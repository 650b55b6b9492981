"""torchvision's pretrained VGG16, AlexNet and Faster R-CNN, fine-tuned on MNIST.

Builders take ``weights`` (``auto``, ``pretrained``, ``none`` or a file path,
see :mod:`torch_ref.finetune.weights`) and return a model that trains in
``torch_ref.train``'s loop like the CNN and the ViT (the detector with its own
task, ``detection.DETECTION``), with ``weights_info`` saying which weights it
started from.
"""

import functools
import warnings

from mnist_common.architectures import WEIGHTS_CHOICES
from torch_ref.finetune import classifiers, detection
from torch_ref.finetune.classifiers import alexnet, vgg16
from torch_ref.finetune.detection import faster_rcnn
from torch_ref.finetune.weights import WeightsError, WeightsInfo, check_available

__all__ = ["alexnet", "vgg16", "faster_rcnn", "WeightsError", "WeightsInfo", "check_available", "check_weights",
           "pretrained_weights"]


def pretrained_weights(model: str, variant: str | None = None):
    """The torchvision weights enum member that ``--weights pretrained`` means for ``model``."""
    if model == "faster_rcnn":
        return detection.DETECTORS[variant or detection.DEFAULT_DETECTOR].weights
    return classifiers.ARCHS[model].weights


def check_weights(model: str, variant: str | None, choice: str, *, image_size: int) -> None:
    """Fail now, before any model trains, on ``--weights`` that the builder would refuse later: pretrained weights
    that are not to be had, or a file that is not a state dict of ``model`` (its keys and shapes are checked by
    building the model on the ``meta`` device, which allocates nothing). Raises WeightsError or ValueError."""

    import torch


    check_available(choice, pretrained_weights(model, variant))
    if choice in WEIGHTS_CHOICES:
        return
    build = functools.partial(detection.build, variant or detection.DEFAULT_DETECTOR) if model == "faster_rcnn" \
        else functools.partial(classifiers.build, model)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copying into meta parameters is a no-op, which is all this needs
        build(weights=choice, image_size=image_size, progress=False)
