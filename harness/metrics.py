"""Classification metrics from logits, through scikit-learn.

Both frameworks hand back plain NumPy logits; every number in a report is
computed here, once, the same way for each framework.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from harness.data import NUM_CLASSES


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy in float64 (a framework-independent check)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict:
    """:func:`prediction_metrics` of the argmax of ``[N, 10]`` logits."""
    return prediction_metrics(np.asarray(logits).argmax(axis=1), labels)


def prediction_metrics(preds: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy (a fraction), macro-F1, per-class report and confusion matrix of predicted classes.

    Classes absent from both predictions and labels still appear
    (``labels=range(10)``), and an undefined F1 counts as 0, as scikit-learn's
    ``zero_division=0`` says. A prediction of -1 (a detector that found
    nothing) is wrong: it lowers accuracy and its true class's recall, and is
    left out of the confusion matrix, whose columns are digits.
    """
    classes = list(range(NUM_CLASSES))
    preds = np.asarray(preds)
    labels = np.asarray(labels)
    report = classification_report(
        labels, preds, labels=classes, output_dict=True, zero_division=0, digits=4
    )
    per_class = {
        str(c): {k: float(report[str(c)][k]) for k in ("precision", "recall", "f1-score")}
        | {"support": int(report[str(c)]["support"])}
        for c in classes
    }
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, labels=classes, average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(labels, preds, labels=classes).tolist(),
    }


def detection_metrics(outputs: dict) -> dict:
    """A detector read as a classifier: the rate of images with no detection, mean IoU of the top box.

    ``outputs`` holds per-image ``prediction`` (-1: no detection) and
    ``top_box_iou`` (NaN where nothing was detected); the IoU mean is over
    the images that have a detection.
    """
    preds = np.asarray(outputs["prediction"])
    iou = np.asarray(outputs["top_box_iou"], dtype=np.float64)
    found = ~np.isnan(iou)
    return {
        "no_detection_rate": float((preds < 0).mean()) if len(preds) else float("nan"),
        "mean_top_box_iou": float(iou[found].mean()) if found.any() else None,
    }
