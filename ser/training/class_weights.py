"""Class-balanced training loss for corpora whose emotions are unevenly represented.

UAR, the papers' metric, averages the per-class recalls, so every class counts the same however
few training segments it has; the plain cross-entropy counts every segment the same and favours the
frequent classes (EmoDB: 127 anger utterances against 46 disgust). `class_weights: balanced` weights
each class's term of the cross-entropy by

    w_c = N / (K * n_c)

with n_c the number of training segments of class c, N their total and K the number of classes that
have any (scikit-learn's "balanced" weights): every class then contributes the same total weight,
and the mean weight over the training segments is 1, so the loss keeps its unweighted scale. A
class without training segments gets weight 0 (its targets are 0 except for label smoothing).
"""
import numpy as np
import torch

from ser.errors import SerError

CLASS_WEIGHTS = ("none", "balanced")


def balanced_weights(labels, num_classes):
    """Balanced weights (float64 array of `num_classes`) of the class indices `labels` (one per
    training segment)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise SerError("class_weights: balanced needs at least one training segment")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise SerError(f"class_weights: class index {labels.max() if labels.max() >= num_classes else labels.min()} "
                       f"outside 0..{num_classes - 1}")
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = labels.size / (present.sum() * counts[present])
    return weights


def class_weights(mode, labels, num_classes):
    """The loss weights of config `class_weights` (a float32 tensor), or None for `none`."""
    if mode == "none":
        return None
    if mode == "balanced":
        return torch.tensor(balanced_weights(labels, num_classes), dtype=torch.float32)
    raise SerError(f"class_weights must be one of {', '.join(CLASS_WEIGHTS)}, got {mode!r}")
