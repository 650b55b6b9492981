"""Metrics against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics import classification_metrics, cross_entropy


def _one_hot_logits(preds):
    logits = np.full((len(preds), 10), -5.0)
    logits[np.arange(len(preds)), preds] = 5.0
    return logits


def test_ten_classes_one_mistake():
    labels = np.arange(10)
    preds = labels.copy()
    preds[0] = 1  # a 0 called a 1
    m = classification_metrics(_one_hot_logits(preds), labels)
    assert m["accuracy"] == pytest.approx(0.9)
    # class 0: no prediction -> P = 0 (zero_division), R = 0, F1 = 0
    # class 1: P = 1/2, R = 1, F1 = 2/3; classes 2..9: F1 = 1
    assert m["per_class"]["0"]["f1-score"] == 0.0
    assert m["per_class"]["1"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["1"]["f1-score"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0 + 2 / 3 + 8) / 10)
    cm = np.array(m["confusion_matrix"])
    assert cm[0, 1] == 1 and cm[0, 0] == 0 and cm.trace() == 9 and cm.sum() == 10


def test_macro_f1_is_the_unweighted_mean_over_classes():
    # 0: 3 of 4 right (one called 2); 1: 2 of 2 right; 2: 1 of 1 right; 3..9 absent.
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    preds = np.array([0, 0, 0, 2, 1, 1, 2])
    m = classification_metrics(_one_hot_logits(preds), labels)
    f1_0 = 2 * 1 * 0.75 / 1.75  # P 3/3, R 3/4
    f1_2 = 2 * 0.5 * 1 / 1.5  # P 1/2, R 1/1
    assert m["accuracy"] == pytest.approx(6 / 7)
    assert m["macro_f1"] == pytest.approx((f1_0 + 1.0 + f1_2) / 10)  # absent classes count as 0
    assert m["per_class"]["3"]["support"] == 0


def test_cross_entropy_by_hand():
    assert cross_entropy(np.zeros((4, 10)), np.array([0, 1, 2, 3])) == pytest.approx(math.log(10))
    logits = np.array([[math.log(3.0), 0.0] + [-np.inf] * 8])  # p = 3/4 for class 0
    assert cross_entropy(logits, np.array([0])) == pytest.approx(-math.log(0.75))
