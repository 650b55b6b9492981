"""Faster R-CNN as a classifier: box targets, reading detections, one training step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.metrics import detection_metrics, prediction_metrics
from mnist_common import BACKGROUND, MNIST_MEAN, MNIST_STD, TrainConfig
from torch_ref import train
from torch_ref.finetune import detection
from torch_ref.finetune.detection import NO_DETECTION, digit_boxes, make_targets, paired_iou, top_detections


def _canvas(*rects) -> torch.Tensor:
    """``[1, 1, 28, 28]`` with ink (1.0) in each (row0, row1, col0, col1) rectangle, ends inclusive."""
    x = torch.zeros(1, 1, 28, 28)
    for r0, r1, c0, c1 in rects:
        x[..., r0 : r1 + 1, c0 : c1 + 1] = 1.0
    return x


@pytest.mark.parametrize("rects,box", [
    ([(5, 9, 10, 19)], [10, 5, 20, 10]),  # x1, y1, x2, y2 in pixel edges
    ([(13, 13, 7, 7)], [7, 13, 8, 14]),  # one pixel: a 1x1 box, never zero-sized
    ([(0, 27, 0, 0)], [0, 0, 1, 28]),  # a line on the border
    ([(2, 3, 2, 3), (20, 25, 15, 16)], [2, 2, 17, 26]),  # two strokes: one box around both
    ([], [0, 0, 28, 28]),  # empty image: the whole frame
])
def test_boxes_of_constructed_digits(rects, box):
    assert digit_boxes(_canvas(*rects)).tolist() == [box]


def test_boxes_of_real_digits_are_inside_and_never_empty(mnist):
    pixels = torch.from_numpy(mnist.test_images[:2000].transpose(0, 3, 1, 2).astype(np.float32) / 255)
    boxes = digit_boxes(pixels)
    assert (boxes[:, 2] - boxes[:, 0] >= 1).all() and (boxes[:, 3] - boxes[:, 1] >= 1).all()
    assert (boxes >= 0).all() and (boxes <= 28).all()
    # every inked pixel lies inside its box, and the box's edge rows/columns hold ink
    for img, (x1, y1, x2, y2) in zip(pixels[:50, 0], boxes[:50].long().tolist()):
        ink = img > detection.INK
        assert ink.sum() == ink[y1:y2, x1:x2].sum()
        assert ink[y1].any() and ink[y2 - 1].any() and ink[:, x1].any() and ink[:, x2 - 1].any()


def test_normalised_background_is_not_ink():
    black = torch.full((1, 1, 28, 28), BACKGROUND) * MNIST_STD + MNIST_MEAN
    assert digit_boxes(black).tolist() == [[0, 0, 28, 28]]  # rounding residue is not a digit


def test_targets_scale_with_the_image_and_shift_labels_by_one():
    (target,) = make_targets(_canvas((5, 9, 10, 19)), torch.tensor([7]), image_size=56)
    assert target["boxes"].tolist() == [[20, 10, 40, 20]]
    assert target["labels"].tolist() == [8]  # 0 is the background class


def test_top_detection_is_the_highest_score_and_none_is_minus_one():
    outputs = [
        {"boxes": torch.tensor([[0.0, 0, 10, 10], [1, 1, 9, 9]]), "labels": torch.tensor([4, 10]),
         "scores": torch.tensor([0.3, 0.9])},  # the second detection wins: digit 9
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0)},
        {"boxes": torch.tensor([[2.0, 2, 6, 6]]), "labels": torch.tensor([1]), "scores": torch.tensor([0.06])},
    ]
    digits, scores, boxes = top_detections(outputs)
    assert digits.tolist() == [9, NO_DETECTION, 0]
    assert scores.tolist() == pytest.approx([0.9, 0.0, 0.06])
    assert boxes[0].tolist() == [1, 1, 9, 9] and torch.isnan(boxes[1]).all()
    iou = paired_iou(boxes, torch.tensor([[1.0, 1, 9, 9], [0, 0, 5, 5], [2, 2, 4, 4]]))
    assert iou[0] == 1.0 and math.isnan(iou[1]) and iou[2] == pytest.approx(4 / 16)


def test_no_detection_counts_as_wrong_in_every_metric():
    preds, labels = np.array([3, NO_DETECTION, 5, NO_DETECTION]), np.array([3, 4, 5, 6])
    m = prediction_metrics(preds, labels)
    assert m["accuracy"] == 0.5
    assert m["per_class"]["4"]["recall"] == 0.0 and m["per_class"]["3"]["recall"] == 1.0
    assert sum(map(sum, m["confusion_matrix"])) == 2  # columns are digits: misses are not in it
    d = detection_metrics({"prediction": preds, "top_box_iou": np.array([0.5, np.nan, 0.7, np.nan])})
    assert d["no_detection_rate"] == 0.5 and d["mean_top_box_iou"] == pytest.approx(0.6)
    assert detection_metrics({"prediction": np.array([-1]), "top_box_iou": np.array([np.nan])})["mean_top_box_iou"] is None


def test_one_training_step_at_the_minimum_size_and_prediction(mnist):
    torch.manual_seed(0)
    model = detection.faster_rcnn(weights="none", image_size=detection.MIN_IMAGE_SIZE)
    assert model.net.roi_heads.box_predictor.cls_score.out_features == 11
    assert model.weights_info.label(0) == "random init (seed 0)"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit = train.fit(model, mnist.train_images[:8], mnist.train_labels[:8],
                    TrainConfig(batch_size=4, optimizer="sgd", lr=0.01), task=detection.DETECTION, progress=False)
    assert all(math.isfinite(h.train_loss) for h in fit.history)
    changed = [k for k, v in model.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert any(k.startswith("roi_heads.box_predictor") for k in (c.removeprefix("net.") for c in changed))
    out = train.evaluate(model, mnist.test_images[:6], mnist.test_labels[:6], batch_size=3, task=detection.DETECTION)
    assert out["loss"] is None and out["predictions"].shape == (6,)
    assert set(out["outputs"]) == {"prediction", "score", "top_box_iou"}
    assert ((out["predictions"] >= NO_DETECTION) & (out["predictions"] <= 9)).all()


def test_coco_shaped_file_keeps_the_detector_and_gets_an_11_class_predictor(tmp_path):
    import torchvision

    torch.manual_seed(5)
    coco = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path / "coco.pth"
    torch.save(coco.state_dict(), path)
    model = detection.faster_rcnn(weights=str(path), image_size=64)
    own = model.net.state_dict()
    for key, value in coco.state_dict().items():
        if not key.startswith("roi_heads.box_predictor"):
            assert torch.equal(own[key], value), key
    assert model.net.roi_heads.box_predictor.cls_score.out_features == 11


def test_small_image_and_unknown_detector_are_refused():
    with pytest.raises(ValueError, match=">= 32 px"):
        detection.faster_rcnn(weights="none", image_size=31)
    with pytest.raises(ValueError, match="unknown detector"):
        detection.faster_rcnn("yolo", weights="none")
