"""Faster R-CNN as an MNIST classifier: one box per digit, label = digit + 1.

The lab fine-tuned a detector on MNIST and read its top detection as the
class. Here:

* the target is one box tight around the digit's nonzero pixels
  (:func:`digit_boxes`), never of zero width or height (Faster R-CNN's losses
  are NaN on such boxes), scaled with the image; label ``digit + 1``, since
  0 is the background class;
* the predictor is ``FastRCNNPredictor(in_features, 11)``;
* ``min_size`` and ``max_size`` both equal ``image_size``, so torchvision's
  transform never rescales the (already resized) images again;
* the prediction is the label of the highest-scoring detection
  (:func:`top_detections`); an image with no detection is wrong (label -1),
  and the rate of those is reported with the mean IoU of the top box.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models import detection as tv_detection
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.ops import FrozenBatchNorm2d

from mnist_common import MNIST_MEAN, MNIST_STD
from mnist_common.architectures import MIN_IMAGE_SIZE as _MIN_SIZES
from torch_ref.finetune import weights as weights_lib

NUM_CLASSES = 11  # background + 10 digits
NO_DETECTION = -1


@dataclasses.dataclass(frozen=True)
class Detector:
    builder: object
    weights: object  # COCO weights: what --weights pretrained means


DETECTORS = {
    "mobilenet_v3_large_320_fpn": Detector(
        tv_detection.fasterrcnn_mobilenet_v3_large_320_fpn,
        tv_detection.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1,
    ),
    "resnet50_fpn_v2": Detector(
        tv_detection.fasterrcnn_resnet50_fpn_v2, tv_detection.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1,
    ),
}
DEFAULT_DETECTOR = "mobilenet_v3_large_320_fpn"
MIN_IMAGE_SIZE = _MIN_SIZES["faster_rcnn"]
INK = 0.5 / 255  # half a grey level: what counts as ink in a digit's box


def digit_boxes(pixels: torch.Tensor, threshold: float = INK) -> torch.Tensor:
    """``[B, 1, H, W]`` pixel values in [0, 1] -> ``[B, 4]`` boxes ``(x1, y1, x2, y2)``.

    The box covers every pixel above ``threshold`` (half a grey level, so the
    rounding of normalising and un-normalising a black pixel is not ink), in
    pixel-edge coordinates: a digit in
    columns 5..20 gives x1 = 5, x2 = 21, so a one-pixel digit is a 1x1 box.
    An empty image gets the whole frame, so no box has zero width or height.
    """
    b, _, h, w = pixels.shape
    ink = pixels[:, 0] > threshold  # [B, H, W]
    cols, rows = ink.any(dim=1), ink.any(dim=2)  # [B, W], [B, H]
    x = torch.arange(w, device=pixels.device)
    y = torch.arange(h, device=pixels.device)
    big = torch.iinfo(torch.long).max
    x1 = torch.where(cols, x, big).amin(dim=1)
    x2 = torch.where(cols, x, -1).amax(dim=1) + 1
    y1 = torch.where(rows, y, big).amin(dim=1)
    y2 = torch.where(rows, y, -1).amax(dim=1) + 1
    empty = ~cols.any(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1)
    full = torch.tensor([0, 0, w, h], device=pixels.device)
    return torch.where(empty[:, None], full, boxes).float()


def to_images(pixels: torch.Tensor, image_size: int) -> torch.Tensor:
    """``[B, 1, 28, 28]`` in [0, 1] -> ``[B, 3, S, S]``: resized, grey as RGB (the detector normalises)."""
    if pixels.shape[-1] != image_size:
        pixels = F.interpolate(pixels, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return pixels.expand(-1, 3, -1, -1)


def make_targets(pixels: torch.Tensor, labels: torch.Tensor, image_size: int) -> list[dict]:
    """One box per image, found at 28 px and scaled to ``image_size``; label ``digit + 1``."""
    boxes = digit_boxes(pixels) * (image_size / pixels.shape[-1])
    return [{"boxes": box[None], "labels": (label + 1)[None]} for box, label in zip(boxes, labels)]


def top_detections(outputs: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detector outputs -> (digit ``[B]`` or -1, score ``[B]`` or 0, box ``[B, 4]`` or NaN) of the top detection."""
    digits, scores, boxes = [], [], []
    for out in outputs:
        if len(out["scores"]):
            i = int(out["scores"].argmax())
            digits.append(int(out["labels"][i]) - 1)
            scores.append(float(out["scores"][i]))
            boxes.append(out["boxes"][i].float().cpu())
        else:
            digits.append(NO_DETECTION)
            scores.append(0.0)
            boxes.append(torch.full((4,), float("nan")))
    return torch.tensor(digits), torch.tensor(scores), torch.stack(boxes) if boxes else torch.empty(0, 4)


def paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of ``a[i]`` with ``b[i]`` (``[B, 4]`` each); NaN where ``a[i]`` is NaN (no detection)."""
    if len(a) == 0:
        return torch.empty(0)
    iou = torchvision.ops.box_iou(torch.nan_to_num(a), b).diagonal()
    return torch.where(torch.isnan(a).any(dim=1), torch.nan, iou)


class MNISTDetector(nn.Module):
    """A torchvision Faster R-CNN with an 11-class predictor, trained and read as a classifier.

    Takes the input every model here takes (MNIST-normalised ``[B, 1, 28, 28]``).
    :meth:`training_loss` is the sum of the detector's four losses against one box
    per digit; :meth:`predict_batch` reads the top detection's digit and the IoU of
    its box with the digit's box. :data:`DETECTION` is the task that trains and
    evaluates it through ``torch_ref.train``.
    """

    def __init__(self, net: nn.Module, image_size: int):
        super().__init__()
        self.net = net
        self.image_size = image_size

    def _pixels(self, x: torch.Tensor) -> torch.Tensor:
        return x * MNIST_STD + MNIST_MEAN  # back to [0, 1]; the detector normalises by itself

    def forward(self, images, targets=None):
        return self.net(images, targets)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pixels = self._pixels(x)
        images = to_images(pixels, self.image_size)  # [B, 3, S, S]
        losses = self.net(list(images), make_targets(pixels, y, self.image_size))
        return sum(losses.values())

    def predict_batch(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pixels = self._pixels(x)
        outputs = self.net(list(to_images(pixels, self.image_size)))
        digits, scores, boxes = top_detections(outputs)
        truth = digit_boxes(pixels).cpu() * (self.image_size / pixels.shape[-1])
        return {"prediction": digits, "score": scores, "top_box_iou": paired_iou(boxes, truth)}


class Detection:
    """``torch_ref.train.Task`` for an :class:`MNISTDetector`: the detector's own losses in training; in
    evaluation the top detection is the prediction (-1: none, counted wrong) and there is no loss."""

    def loss(self, model: MNISTDetector, x, y, label_smoothing=0.0):
        if label_smoothing:
            raise ValueError("label smoothing does not apply to a detector (its losses are its own)")
        return model.training_loss(x, y)

    def outputs(self, model: MNISTDetector, x, y):
        return model.predict_batch(x)

    def summary(self, outputs, labels):
        accuracy = float((outputs["prediction"] == labels).mean())
        return {"loss": None, "accuracy": accuracy, "predictions": outputs["prediction"], "outputs": outputs}


DETECTION = Detection()


def _replace_predictor(net: nn.Module) -> None:
    in_features = net.roi_heads.box_predictor.cls_score.in_features
    net.roi_heads.box_predictor = FastRCNNPredictor(in_features, NUM_CLASSES)


def _freeze_batchnorm(module: nn.Module) -> None:
    """Swap every ``BatchNorm2d`` for torchvision's ``FrozenBatchNorm2d``, as its pretrained detectors have."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features))  # torchvision's default eps, as built
        else:
            _freeze_batchnorm(child)


def build(detector: str = DEFAULT_DETECTOR, *, weights: str = "auto", image_size: int = 128,
          box_score_thresh: float = 0.05, progress: bool = True) -> MNISTDetector:
    """Faster R-CNN for 11 classes, initialised as ``weights`` says (COCO for ``pretrained``).

    ``weights_backbone`` is always passed explicitly (``None``): torchvision's
    default would fetch ImageNet backbone weights even for a random detector.
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r} (choose from {', '.join(DETECTORS)})")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"faster_rcnn needs --image-size >= {MIN_IMAGE_SIZE} px, got {image_size}")
    spec = DETECTORS[detector]
    state, info = weights_lib.resolve(weights, spec.weights, progress=progress)
    kwargs = {"weights_backbone": None, "min_size": image_size, "max_size": image_size,
              "box_score_thresh": box_score_thresh}
    if info.source == "torchvision":
        # torchvision's own route (the file is in the cache now): frozen batch norm in the
        # backbone and its default of 3 trainable backbone stages, then a new 11-class predictor
        net = spec.builder(weights=spec.weights, progress=progress, **kwargs)
        _replace_predictor(net)
    elif state is not None:
        head = state.get("roi_heads.box_predictor.cls_score.weight")
        coco = head is not None and head.shape[0] != NUM_CLASSES  # a COCO state dict: 91 classes
        net = spec.builder(weights=None, num_classes=91 if coco else NUM_CLASSES, **kwargs)
        if not any(k.endswith("num_batches_tracked") for k in state):
            _freeze_batchnorm(net.backbone)  # saved from a pretrained (frozen batch norm) detector
        weights_lib.load_matching(net, state, info.name)
        if coco:
            _replace_predictor(net)
    else:
        net = spec.builder(weights=None, num_classes=NUM_CLASSES, **kwargs)
    model = MNISTDetector(net, image_size)
    model.weights_info = info
    return model


def faster_rcnn(variant: str = DEFAULT_DETECTOR, **kwargs) -> MNISTDetector:
    return build(variant, **kwargs)
