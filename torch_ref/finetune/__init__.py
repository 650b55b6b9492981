"""torchvision's pretrained VGG16, AlexNet and Faster R-CNN, fine-tuned on MNIST.

Builders take ``weights`` (``auto``, ``pretrained``, ``none`` or a file path,
see :mod:`torch_ref.finetune.weights`) and return a model that trains in
``torch_ref.train``'s loop like the CNN and the ViT (the detector with its own
task, ``detection.DETECTION``), with ``weights_info`` saying which weights it
started from.
"""

from torch_ref.finetune import classifiers, detection
from torch_ref.finetune.classifiers import alexnet, vgg16
from torch_ref.finetune.detection import faster_rcnn
from torch_ref.finetune.weights import WeightsError, WeightsInfo, check_available

__all__ = ["alexnet", "vgg16", "faster_rcnn", "WeightsError", "WeightsInfo", "check_available", "pretrained_weights"]


def pretrained_weights(model: str, variant: str | None = None):
    """The torchvision weights enum member that ``--weights pretrained`` means for ``model``."""
    if model == "faster_rcnn":
        return detection.DETECTORS[variant or detection.DEFAULT_DETECTOR].weights
    return classifiers.ARCHS[model].weights
