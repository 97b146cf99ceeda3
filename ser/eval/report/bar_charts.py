"""Grouped UAR bar charts in the layout of paper 1's Figure 2 (groups = models, bars =
augmentations, ± std error bars; ser.eval.bar_chart draws them) and the section linking them."""
import math
import os
import re

from ser.eval.bar_chart import save_bar_chart_png
from ser.eval.conditions import from_dir, sort_key as condition_sort_key
from ser.augment.settings import label as aug_name
from ser.eval.report.grid import model_grid
from ser.eval.report.markdown import rel


def bar_chart_name(corpus, condition):
    """'uar_<corpus>_<condition>.png' ('emodb/all4', 'test_snr0' -> 'uar_emodb_all4_snr0.png')."""
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", f"uar_{corpus}_{from_dir(condition).name}") + ".png"


def write_uar_bar_charts(summaries, descs, out_dir):
    """One chart per corpus and condition that has more than one model or augmentation, written
    into out_dir; (corpus, condition) -> path."""
    paths = {}
    for c in dict.fromkeys(s.corpus for s in summaries):
        columns, augs, cells = model_grid(summaries, descs, c)
        conds = sorted({s.condition for s in summaries if s.corpus == c}, key=condition_sort_key)
        for cond in conds:
            cols = [col for col in columns if any((a, col, cond) in cells for a in augs)]
            used = [a for a in augs if any((a, col, cond) in cells for col in cols)]
            if len(cols) < 2 and len(used) < 2:
                continue
            series = []           # (label, {column: summary})
            for a in used:
                width = max(len(cells.get((a, col, cond), [])) for col in cols)
                if width == 1:
                    series.append((aug_name(a), {col: cells[(a, col, cond)][0]
                                                 for col in cols if (a, col, cond) in cells}))
                else:         # several tags of one model and augmentation: a bar per tag
                    for col in cols:
                        for s in cells.get((a, col, cond), []):
                            series.append((f"{aug_name(a)} [{s.tag}]", {col: s}))
            mean = [[100 * ss[col].uar_mean if col in ss else math.nan for col in cols] for _, ss in series]
            std = [[100 * ss[col].uar_std if col in ss else math.nan for col in cols] for _, ss in series]
            over = sorted({f"{s.n} {s.mode}" for _, ss in series for s in ss.values()})
            path = os.path.join(out_dir, bar_chart_name(c, cond))
            classes = next(iter(series[0][1].values())).classes
            save_bar_chart_png(path, cols, [lab for lab, _ in series], mean, std,
                               title=f"{c} {cond}: UAR mean ± std (over {', '.join(over)})",
                               chance=100.0 / len(classes))
            paths[(c, cond)] = path
    return paths


def bar_chart_section(layout):
    """'## UAR bar charts (paper 1, Figure 2 layout)' lines linking the PNGs (none without charts)."""
    bar_charts = layout.inputs.bar_charts
    if not bar_charts:
        return []
    L = ["## UAR bar charts (paper 1, Figure 2 layout)", "",
         "Per corpus and test condition: one group of bars per model, one bar per augmentation, "
         "height the mean UAR (%) (written at its foot), error bar ± std as in the UAR table; as in the "
         "paper, the y axis starts a little below the lowest bar, not necessarily at 0, and the dashed "
         "line is the chance level (100 % / number of classes).",
         ""]
    for (c, cond), path in bar_charts.items():
        link = rel(path, layout.out_dir)
        L += [f"- [{c} {cond}]({link})", "", f"  ![UAR bar chart, {c} {cond}]({link})", ""]
    return L
