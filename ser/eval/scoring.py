"""Score outputs of one evaluation set: predictions.tsv, metrics.json, confusion.png, done.

`write_scores` takes utterance posteriors however they were computed (clean test set, noisy
copies, adversarial attacks) so that every condition is scored and reported the same way.

predictions.tsv: header `utt true pred <class 1> ... <class C>` (tab-separated), one line per
utterance in the given order, posteriors in class order with 6 decimals.
metrics.json: uar, wa, per_class_recall {label: value, null if the class has no utterance},
confusion (rows = true class, in class order), num_utts, classes, plus optional extra keys.
"""
import json
import math
import os

import numpy as np

from ser.data.atomic import atomic_open, atomic_write_text
from ser.errors import SerError
from ser.eval.confusion_plot import save_confusion_png
from ser.metrics import confusion_matrix, per_class_recall, uar, weighted_accuracy

DONE = "done"


def label_indices(utts, utt2label, classes, source="utt2emo"):
    """Class indices of the utterances' labels; SerError naming an utterance without a known label."""
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for u in utts:
        if u not in utt2label:
            raise SerError(f"{source}: no label for utterance '{u}'")
        lab = utt2label[u]
        if lab not in index:
            raise SerError(f"{source}: utterance '{u}' has label '{lab}', which is not one of the "
                           f"model's classes ({' '.join(classes)})")
        out.append(index[lab])
    return np.asarray(out, dtype=np.int64)


def _nan_to_none(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def compute_metrics(y_true, y_pred, classes):
    """The metrics.json dict of integer true/predicted class indices."""
    c = len(classes)
    recall = per_class_recall(y_true, y_pred, c)
    return {
        "uar": _nan_to_none(uar(y_true, y_pred, c)),
        "wa": _nan_to_none(weighted_accuracy(y_true, y_pred, c)),
        "per_class_recall": {lab: _nan_to_none(float(r)) for lab, r in zip(classes, recall)},
        "confusion": confusion_matrix(y_true, y_pred, c).tolist(),
        "num_utts": int(len(y_true)),
        "classes": list(classes),
    }


def write_scores(out_dir, utts, y_true, posteriors, classes, extra=None, title=None):
    """Write predictions.tsv, metrics.json, confusion.png and finally `done` into out_dir.

    posteriors: (N, C) array in class order; the prediction is its argmax. Returns the metrics.
    """
    posteriors = np.asarray(posteriors, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if posteriors.shape != (len(utts), len(classes)) or len(y_true) != len(utts):
        raise SerError(f"posteriors of shape {posteriors.shape} do not match {len(utts)} utterances "
                       f"and {len(classes)} classes")
    os.makedirs(out_dir, exist_ok=True)
    done = os.path.join(out_dir, DONE)
    if os.path.exists(done):
        os.unlink(done)  # a re-score in progress is not complete
    y_pred = posteriors.argmax(axis=1) if len(utts) else np.zeros(0, np.int64)
    with atomic_open(os.path.join(out_dir, "predictions.tsv"), "w", encoding="utf-8") as f:
        f.write("\t".join(["utt", "true", "pred"] + list(classes)) + "\n")
        for u, t, p, post in zip(utts, y_true, y_pred, posteriors):
            f.write("\t".join([u, classes[t], classes[p]] + [f"{x:.6f}" for x in post]) + "\n")
    metrics = compute_metrics(y_true, y_pred, classes)
    metrics.update(extra or {})
    atomic_write_text(os.path.join(out_dir, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    if title is None:
        title = f"UAR {100 * metrics['uar']:.1f}%  WA {100 * metrics['wa']:.1f}%  ({len(utts)} utts)" \
            if metrics["uar"] is not None else None
    save_confusion_png(os.path.join(out_dir, "confusion.png"), metrics["confusion"], classes, title)
    atomic_write_text(done, "")
    return metrics


def read_predictions(path):
    """(utts, true labels, predicted labels, posteriors (N, C), classes) of a predictions.tsv."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:3] != ["utt", "true", "pred"]:
            raise SerError(f"{path}:1: expected a header 'utt true pred <classes>'")
        classes = header[3:]
        utts, true, pred, post = [], [], [], []
        for lineno, line in enumerate(f, 2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 + len(classes):
                raise SerError(f"{path}:{lineno}: expected {3 + len(classes)} fields, got {len(parts)}")
            utts.append(parts[0])
            true.append(parts[1])
            pred.append(parts[2])
            post.append([float(x) for x in parts[3:]])
    return utts, true, pred, np.asarray(post, dtype=np.float64).reshape(len(utts), len(classes)), classes


def scores_up_to_date(out_dir, inputs):
    """True when `out_dir/done` exists and is newer than every input file (model, feats, list).

    Lets a re-run of a scoring stage skip conditions that are already scored, while a retrained
    model or new features (newer files) are scored again.
    """
    done = os.path.join(out_dir, "done")
    if not os.path.exists(done):
        return False
    t = os.path.getmtime(done)
    return all(os.path.getmtime(p) <= t for p in inputs if os.path.exists(p))
