"""Confusion matrix as a PNG (matplotlib's Agg canvas: no display, no pyplot global state).

Cells show the row-normalised share (the recall of the true class on the diagonal) as colour
and text, with the utterance count below it. A run's own matrix (written to
<tag>/fold.K/seedS/<condition>/confusion.png) is titled with its tag, fold, seed and condition,
since the many per-fold PNGs look alike otherwise.
"""
import os
import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ser.data.atomic import atomic_save_png
from ser.eval.conditions import from_dir


def confusion_figure(cm, classes, title=None):
    """A matplotlib Figure of the (C, C) count matrix `cm` (rows = true class)."""
    cm = np.asarray(cm, dtype=np.float64)
    c = len(classes)
    support = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, support, out=np.zeros_like(cm), where=support > 0)
    size = 1.6 + 0.75 * c
    fig = Figure(figsize=(size + 1.2, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(share, vmin=0.0, vmax=1.0, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ax.set_xticks(range(c), labels=classes, rotation=45, ha="right")
    ax.set_yticks(range(c), labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(c):
        for j in range(c):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, f"{100 * share[i, j]:.0f}%\n{int(round(cm[i, j]))}", ha="center", va="center",
                    fontsize=7, color=colour)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


RUN_PATH = re.compile(r"(?:^|/)([^/]+)/fold\.(\d+)/seed(\d+)/([^/]+)/[^/]+$")


def run_label(path):
    """'<tag> fold K seed S, <condition>' of a PNG inside a run's scoring dir, else None."""
    m = RUN_PATH.search(os.path.abspath(path).replace(os.sep, "/"))
    if m is None:
        return None
    tag, fold, seed, cond = m.groups()
    return f"{tag} fold {fold} seed {seed}, {from_dir(cond).name}"


def save_confusion_png(path, cm, classes, title=None):
    """Render the confusion matrix and write it to `path` atomically (a run's own matrix gets
    its run_label above the title)."""
    label = run_label(path)
    if label is not None:
        title = label if not title else f"{label}\n{title}"
    atomic_save_png(path, confusion_figure(cm, classes, title))
