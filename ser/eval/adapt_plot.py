"""UAR against the part of the target corpus added to training (paper 2, Figure 4).

An adaptation experiment (egs/cross_corpus/run.sh --setup adapt) has one experiment tag per
(setting, fraction F): `<feat>_<model>_<aug>_f<F>_<config hash>`, e.g. `mel_cnn_blstm_real_syn_f0.2_1a2b3c4d`.
This module groups the summaries of such tags (ser.eval.aggregate.summarize) into one series per
setting (`mel_cnn_blstm_real_syn`) with one point per F, renders them as a markdown table
(settings x F) and as a line plot PNG (matplotlib's Agg canvas: no display, no pyplot state):
x = percentage of the target corpus in the training data, y = mean UAR (%) with a ± std band
(std over the seeds).
"""
import math
import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ser.data.atomic import atomic_save_png
from ser.errors import SerError

TAG_RE = re.compile(r"^(?P<series>.+)_f(?P<fraction>[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)_(?P<hash>[0-9a-f]{8})$")


def parse_adapt_tag(tag):
    """(series, fraction) of an adaptation tag, or None for another tag."""
    m = TAG_RE.match(tag)
    if not m:
        return None
    return m.group("series"), float(m.group("fraction"))


def adaptation_grid(summaries, condition="test_clean"):
    """(fractions sorted, series in first-seen order, {(series, fraction): Summary}) of the
    adaptation tags among `summaries` (one corpus) for `condition`. Two tags of the same series
    and fraction (e.g. an edited config: another hash) are an error: the newer one is not known."""
    grid, series, fractions = {}, [], set()
    for s in summaries:
        parsed = parse_adapt_tag(s.tag) if s.condition == condition else None
        if parsed is None:
            continue
        name, frac = parsed
        if (name, frac) in grid:
            raise SerError(f"two experiments of '{name}' with fraction {frac:g}: {grid[(name, frac)].tag} "
                           f"and {s.tag} (remove the stale one)")
        grid[(name, frac)] = s
        fractions.add(frac)
        if name not in series:
            series.append(name)
    return sorted(fractions), series, grid


def grid_arrays(fractions, series, grid):
    """(mean, std, n): (len(series), len(fractions)) arrays of UAR in percent (nan: not run)."""
    mean = np.full((len(series), len(fractions)), np.nan)
    std = np.full_like(mean, np.nan)
    n = np.zeros(mean.shape, dtype=np.int64)
    for i, name in enumerate(series):
        for j, f in enumerate(fractions):
            s = grid.get((name, f))
            if s is not None:
                mean[i, j], std[i, j], n[i, j] = 100 * s.uar_mean, 100 * s.uar_std, s.n
    return mean, std, n


def line_plot_figure(fractions, series, mean, std, title=None, ylabel="UAR (%)"):
    """A Figure with one line per series: x = 100 * fraction (% of the target corpus in the
    training data), markers at the means, a shaded ± std band where std is defined."""
    x = 100 * np.asarray(fractions, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64).reshape(len(series), len(fractions))
    std = np.asarray(std, dtype=np.float64).reshape(len(series), len(fractions))
    fig = Figure(figsize=(5.5, 3.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, name in enumerate(series):
        ok = np.isfinite(mean[i])
        if not ok.any():
            continue
        colour = f"C{i % 10}"
        ax.plot(x[ok], mean[i, ok], marker="o", markersize=4, color=colour, label=name)
        band = ok & np.isfinite(std[i])
        if band.any():
            ax.fill_between(x[band], (mean[i] - std[i])[band], (mean[i] + std[i])[band], color=colour,
                            alpha=0.15, linewidth=0)
    ax.set_xticks(x, labels=[f"{v:g}" for v in x])
    ax.set_xlabel("target data in the training set (% of the target corpus)")
    ax.set_ylabel(ylabel)
    ax.grid(linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_line_plot_png(path, fractions, series, mean, std, title=None, ylabel="UAR (%)"):
    """Render line_plot_figure and write it to `path` atomically."""
    atomic_save_png(path, line_plot_figure(fractions, series, mean, std, title, ylabel), bbox_inches="tight")


def markdown_table(fractions, series, mean, std, n, added=None, digits=1):
    """Markdown lines: one row per series, one column per fraction ('64.1 ± 1.3 (3)': mean ± std
    over n seeds); `added` ({fraction: number of target utterances added}) becomes a first row."""
    def cell(m, s, k):
        if not math.isfinite(m):
            return "–"
        return f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if math.isfinite(s) else "") + f" ({k})"

    head = "| setting | " + " | ".join(f"{100 * f:g} %" for f in fractions) + " |"
    lines = [head, "|---" * (len(fractions) + 1) + "|"]
    if added is not None:
        lines.append("| *target utterances added* | " +
                     " | ".join(str(added.get(f, "–")) for f in fractions) + " |")
    for i, name in enumerate(series):
        lines.append(f"| {name} | " + " | ".join(cell(mean[i, j], std[i, j], n[i, j])
                                                 for j in range(len(fractions))) + " |")
    return lines
