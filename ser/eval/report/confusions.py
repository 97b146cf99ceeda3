"""Confusion matrices: one PNG per model and condition summed over its folds and repeats, and
the section linking them and every run's own matrix."""
import os

from ser.eval.confusion_plot import save_confusion_png
from ser.eval.report.markdown import checkout_root, inside, pm, rel


def confusion_png_path(summary, exp_dir, fig_dir=None):
    """Where the aggregated confusion matrix of a summary goes."""
    if fig_dir:
        return os.path.join(fig_dir, f"{summary.corpus}_{summary.tag}_{summary.condition}_confusion.png")
    return os.path.join(exp_dir, summary.tag, f"confusion_{summary.condition}.png")


def write_aggregated_confusions(summaries, exp_dirs, fig_dir=None):
    """Write one PNG per summary (confusion summed over its folds and seeds); key -> path."""
    paths = {}
    for s in summaries:
        path = confusion_png_path(s, exp_dirs[s.corpus], fig_dir)
        title = (f"{s.tag} {s.condition}: sum over {len(s.folds)} folds x {len(s.seed_uar)} seed(s)\n"
                 f"UAR {pm(s.uar_mean, s.uar_std)} %")
        save_confusion_png(path, s.confusion, s.classes, title)
        paths[(s.corpus, s.tag, s.condition)] = path
    return paths


def confusion_section(layout):
    """'## Confusion matrices': per model and condition a link to the summed matrix and to each
    run's matrix that exists in the report's checkout (a run of another worktree is named, not
    linked: such a link would dangle in the repository)."""
    L = ["## Confusion matrices", ""]
    root = checkout_root(layout.out_dir)
    elsewhere = set()
    for c, cond in layout.columns:
        for t in layout.tags:
            s = layout.by_key.get((c, t, cond))
            if s is None:
                continue
            parts = []
            agg = layout.inputs.confusion_paths.get((c, t, cond))
            if agg:
                parts.append(f"[all folds]({rel(agg, layout.out_dir)})")
            for r in sorted(s.runs, key=lambda r: (r.fold, r.seed)):
                png = os.path.join(r.path, "confusion.png")
                if not os.path.exists(png):
                    continue
                if not inside(png, root):
                    elsewhere.add(os.path.join(r.exp, r.tag))
                    continue
                name = f"{r.fold}" if len(s.seed_uar) == 1 else f"{r.fold}/s{r.seed}"
                parts.append(f"[{name}]({rel(png, layout.out_dir)})")
            L.append(f"- {layout.labels[t]}, {c} {cond}: " + " ".join(parts))
    if elsewhere:
        L += ["", "Each run's own matrix (fold.K/seedS/test_<condition>/confusion.png) stays in the "
              "checkout that ran it: " + ", ".join(f"`{d}`" for d in sorted(elsewhere)) + "."]
    return L + [""]
