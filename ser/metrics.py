"""Classification metrics for speech emotion recognition, on integer class indices (training's
validation and the evaluation use the same ones).

UAR (unweighted average recall) is the mean of the per-class recalls: each emotion counts the
same however many utterances it has, which is why SER papers report it on imbalanced corpora.
WA (weighted accuracy) is plain accuracy over utterances. A class with no true example in the
evaluated set has no defined recall: it is reported as nan and left out of the UAR (a test
speaker in EmoDB does not always utter every emotion).
"""
import numpy as np

from ser.errors import SerError


def _check(y_true, y_pred, num_classes):
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise SerError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be 1-D of equal length")
    if y_true.size and not (np.issubdtype(y_true.dtype, np.integer) and np.issubdtype(y_pred.dtype, np.integer)):
        raise SerError("y_true and y_pred must hold integer class indices")
    num_classes = int(num_classes)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise SerError(f"{name} holds a class index outside [0, {num_classes})")
    return y_true.astype(np.int64), y_pred.astype(np.int64), num_classes


def confusion_matrix(y_true, y_pred, num_classes):
    """(num_classes, num_classes) int64 counts; row = true class, column = predicted class."""
    y_true, y_pred, c = _check(y_true, y_pred, num_classes)
    return np.bincount(y_true * c + y_pred, minlength=c * c).reshape(c, c)


def per_class_recall(y_true, y_pred, num_classes):
    """Recall of each class (float64 array); nan for a class with no true example."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    recall = np.full(cm.shape[0], np.nan)
    present = support > 0
    recall[present] = np.diag(cm)[present] / support[present]
    return recall


def uar(y_true, y_pred, num_classes):
    """Unweighted average recall over the classes present in y_true (nan if y_true is empty)."""
    recall = per_class_recall(y_true, y_pred, num_classes)
    present = ~np.isnan(recall)
    return float(recall[present].mean()) if present.any() else float("nan")


def weighted_accuracy(y_true, y_pred, num_classes=None):
    """Fraction of utterances classified correctly (nan if empty)."""
    y_true, y_pred, _ = _check(y_true, y_pred, num_classes if num_classes is not None else
                               max(int(np.max(y_true, initial=-1)), int(np.max(y_pred, initial=-1))) + 1)
    return float((y_true == y_pred).mean()) if y_true.size else float("nan")
