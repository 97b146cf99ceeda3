"""UAR, WA, per-class recall and the confusion matrix against hand-computed values."""
import math

import numpy as np
import pytest

from ser.metrics import confusion_matrix, per_class_recall, uar, weighted_accuracy
from ser.errors import SerError


def test_imbalanced_uar_differs_from_wa():
    # class 0: 8 utterances, 7 right; class 1: 2 utterances, 0 right.
    y_true = np.array([0] * 8 + [1] * 2)
    y_pred = np.array([0] * 7 + [1] + [0, 0])
    assert confusion_matrix(y_true, y_pred, 2).tolist() == [[7, 1], [2, 0]]
    np.testing.assert_allclose(per_class_recall(y_true, y_pred, 2), [7 / 8, 0.0])
    assert uar(y_true, y_pred, 2) == pytest.approx((7 / 8 + 0) / 2)   # 0.4375
    assert weighted_accuracy(y_true, y_pred, 2) == pytest.approx(7 / 10)


def test_three_classes_hand_computed():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 2, 1, 1, 0])
    assert confusion_matrix(y_true, y_pred, 3).tolist() == [[1, 1, 1], [0, 2, 0], [1, 0, 0]]
    np.testing.assert_allclose(per_class_recall(y_true, y_pred, 3), [1 / 3, 1.0, 0.0])
    assert uar(y_true, y_pred, 3) == pytest.approx(4 / 9)
    assert weighted_accuracy(y_true, y_pred, 3) == pytest.approx(3 / 6)


def test_perfect_predictor():
    y = np.array([0, 1, 2, 3, 3, 3, 1])
    assert uar(y, y, 4) == 1.0
    assert weighted_accuracy(y, y, 4) == 1.0
    np.testing.assert_array_equal(confusion_matrix(y, y, 4), np.diag([1, 2, 1, 3]))


def test_all_one_class_predictor():
    # Always predicting the majority class: WA is its share, UAR is 1/number of present classes.
    y_true = np.array([0, 0, 0, 0, 0, 0, 1, 2])
    y_pred = np.zeros_like(y_true)
    assert weighted_accuracy(y_true, y_pred, 3) == pytest.approx(6 / 8)
    assert uar(y_true, y_pred, 3) == pytest.approx(1 / 3)
    assert confusion_matrix(y_true, y_pred, 3)[:, 0].tolist() == [6, 1, 1]


def test_absent_class_is_nan_and_excluded():
    y_true = np.array([0, 0, 2, 2])
    y_pred = np.array([0, 1, 2, 1])
    rec = per_class_recall(y_true, y_pred, 3)
    assert rec[0] == 0.5 and math.isnan(rec[1]) and rec[2] == 0.5
    assert uar(y_true, y_pred, 3) == pytest.approx(0.5)   # not (0.5 + 0 + 0.5) / 3


def test_random_against_bruteforce_loop():
    rng = np.random.default_rng(0)
    for trial in range(20):
        c = int(rng.integers(2, 8))
        n = int(rng.integers(1, 60))
        y_true = rng.integers(0, c, n)
        y_pred = rng.integers(0, c, n)
        cm = [[0] * c for _ in range(c)]
        for t, p in zip(y_true.tolist(), y_pred.tolist()):
            cm[t][p] += 1
        recalls = [cm[k][k] / sum(cm[k]) for k in range(c) if sum(cm[k]) > 0]
        correct = sum(1 for t, p in zip(y_true.tolist(), y_pred.tolist()) if t == p)
        assert confusion_matrix(y_true, y_pred, c).tolist() == cm
        assert uar(y_true, y_pred, c) == pytest.approx(sum(recalls) / len(recalls), abs=1e-12)
        assert weighted_accuracy(y_true, y_pred, c) == pytest.approx(correct / n, abs=1e-12)


def test_bad_input_raises():
    with pytest.raises(SerError):
        uar([0, 1], [0], 2)
    with pytest.raises(SerError, match="outside"):
        uar([0, 3], [0, 1], 3)
    with pytest.raises(SerError, match="integer"):
        uar(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 2)
