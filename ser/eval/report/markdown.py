"""Markdown formatting shared by the report's sections: percentages, mean ± std, durations,
tables and relative links."""
import math
import os

import numpy as np


def pct(x, digits=1):
    """0.6412 -> '64.1'; nan/None -> '–'."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def pm(mean, std, digits=1):
    """'64.1 ± 1.3' (percent); the ± part is left out when std is undefined (a single value)."""
    if std is None or math.isnan(std):
        return pct(mean, digits)
    return f"{pct(mean, digits)} ± {pct(std, digits)}"


def mean_std_text(values, digits=3):
    """'0.412 ± 0.031' of raw values (sample std); the mean alone for a single value."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return f"{v.mean():.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def mean_of(values_by_key):
    """The mean of a dict's values (nan for an empty dict)."""
    return sum(values_by_key.values()) / len(values_by_key) if values_by_key else math.nan


def hms(seconds):
    """Seconds as '1h02m', '3m05s' or '12s' ('–' if unknown)."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def table(header, rows):
    """The lines of a markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def rel(path, start):
    """`path` relative to the directory `start`, with '/' separators (for links)."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(start)).replace(os.sep, "/")


def checkout_root(out_dir):
    """The checkout a report in `out_dir` belongs to: the parent of the `egs/` above it (the
    report may sit in a recipe, <root>/egs/<recipe>, or deeper, e.g. its results/<name>/);
    without an `egs/` above it, the parent of the parent of `out_dir`."""
    d = os.path.abspath(out_dir)
    while os.path.dirname(d) != d:
        if os.path.basename(os.path.dirname(d)) == "egs":
            return os.path.dirname(os.path.dirname(d))
        d = os.path.dirname(d)
    return os.path.dirname(os.path.dirname(os.path.abspath(out_dir)))


def inside(path, root):
    """Whether `path` lies under the directory `root` (a link to it stays in the checkout)."""
    return not rel(path, root).startswith("..")
