"""Paired comparison of two settings over the same test folds (speakers): the per-fold difference,
its mean, its standard error and how many folds improved. Under leave-one-speaker-out the folds'
spread (one speaker each) dwarfs most differences between settings; pairing removes it."""
import math
from dataclasses import dataclass


@dataclass
class PairedDifference:
    mean: float          # mean over the common folds of (a - b)
    stderr: float        # standard error of that mean (nan with fewer than 2 folds)
    better: int          # folds where a > b
    n: int               # common folds


def paired_difference(a, b):
    """a, b: fold -> value. PairedDifference over the folds both have, or None when they share none."""
    folds = sorted(set(a) & set(b))
    if not folds:
        return None
    d = [a[k] - b[k] for k in folds]
    n = len(d)
    mean = sum(d) / n
    stderr = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n) if n > 1 else float("nan")
    return PairedDifference(mean, stderr, sum(x > 0 for x in d), n)


def paired_text(diff, scale=100.0, digits=1):
    """'+1.2 ± 0.8 (better in 6 of 10)' (mean ± standard error, scaled to points), '–' for None."""
    if diff is None:
        return "–"
    se = "" if math.isnan(diff.stderr) else f" ± {diff.stderr * scale:.{digits}f}"
    return f"{diff.mean * scale:+.{digits}f}{se} (better in {diff.better} of {diff.n})"
