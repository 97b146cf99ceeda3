"""Grouped bar chart of UAR as a PNG, in the layout of paper 1's Figure 2 (matplotlib's Agg canvas:
no display, no pyplot global state).

Groups on the x axis are models; within a group one bar per augmentation setting (the legend),
its height the mean UAR (%) with a ± std error bar. As in the paper, the y axis starts a little
below the lowest bar (not at 0) so that differences of a few points stay visible; every bar is
labelled with its value (inside, at its foot), and the chance level (100 / number of classes,
the UAR of a constant or random guess) is drawn as a dashed line inside the axis, so that the
truncated axis cannot make small differences look large.
"""
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ser.data.atomic import atomic_save_png


def bar_chart_figure(groups, series, mean, std, title=None, ylabel="UAR (%)", chance=None):
    """A Figure of grouped bars. mean, std: (len(series), len(groups)) arrays in percent; a nan
    mean draws no bar (that model was not run with that setting), a nan std no error bar;
    chance: the chance level in percent, drawn as a dashed line (None: none)."""
    mean = np.asarray(mean, dtype=np.float64).reshape(len(series), len(groups))
    std = np.asarray(std, dtype=np.float64).reshape(len(series), len(groups))
    n_s, n_g = len(series), len(groups)
    width = 0.8 / max(n_s, 1)
    # constrained layout keeps the legend (below, outside the axes) clear of rotated model names
    fig = Figure(figsize=(max(5.0, 1.1 + n_g * (0.5 + 0.35 * n_s)), 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = [f"C{i % 10}" for i in range(n_s)]
    drawn = np.isfinite(mean)
    spread = np.where(np.isfinite(std), std, 0.0)[drawn]
    lo = hi = None
    if drawn.any():
        # every bar keeps >= 10 points above the axis foot (room for its label), error bars 3
        low = min(mean[drawn].min() - 10.0, (mean[drawn] - spread).min() - 3.0)
        if chance is not None:
            low = min(low, chance - 5.0)   # the chance line stays inside the axis
        lo = max(0.0, 5.0 * math.floor(low / 5.0))
        top = float((mean[drawn] + spread).max())
        hi = top + 0.08 * (top - lo) + 1.0
    labelled = set()
    for i, name in enumerate(series):
        for j in range(n_g):
            m, s = mean[i, j], std[i, j]
            if not np.isfinite(m):
                continue
            x = j - 0.4 + width * (i + 0.5)
            err = s if np.isfinite(s) else None
            ax.bar(x, m, width * 0.92, color=colours[i], yerr=err, capsize=2, ecolor="black",
                   error_kw={"elinewidth": 0.8}, label=None if i in labelled else name)
            labelled.add(i)
            ax.text(x, lo + 0.5, f"{m:.1f}", ha="center", va="bottom", fontsize=7, rotation=90, color="white")
    if chance is not None:
        ax.axhline(chance, color="0.25", linestyle="--", linewidth=0.9, zorder=3,
                   label=f"chance ({chance:.1f} %)")
        labelled.add("chance")
    if lo is not None:
        ax.set_ylim(lo, hi)
    rotate = n_g > 6 or max((len(str(g)) for g in groups), default=0) * 0.075 > 0.5 + 0.35 * n_s
    ax.set_xticks(range(n_g), labels=list(groups), rotation=20 if rotate else 0, ha="right" if rotate else "center")
    ax.set_xlim(-0.6, n_g - 0.4)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    if labelled:
        fig.legend(fontsize=7, ncol=min(len(labelled), 4), loc="outside lower center", frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def save_bar_chart_png(path, groups, series, mean, std, title=None, ylabel="UAR (%)", chance=None):
    """Render the grouped bar chart and write it to `path` atomically."""
    atomic_save_png(path, bar_chart_figure(groups, series, mean, std, title, ylabel, chance), bbox_inches="tight")
