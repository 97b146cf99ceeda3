"""ser.eval.paired against numpy: per-fold differences of two settings."""
import math

import numpy as np

from ser.eval.paired import paired_difference, paired_text


def test_paired_difference_matches_numpy_over_common_folds():
    a = {1: 0.60, 2: 0.72, 3: 0.55, 4: 0.80, 5: 0.9}
    b = {1: 0.65, 2: 0.70, 3: 0.50, 4: 0.71, 6: 0.1}          # folds 5, 6 not shared
    d = np.array([a[k] - b[k] for k in (1, 2, 3, 4)])
    p = paired_difference(a, b)
    assert p.n == 4 and p.better == 3
    assert math.isclose(p.mean, d.mean()) and math.isclose(p.stderr, d.std(ddof=1) / 2)
    assert paired_text(p) == f"{d.mean() * 100:+.1f} ± {d.std(ddof=1) / 2 * 100:.1f} (better in 3 of 4)"


def test_no_common_fold_and_single_fold():
    assert paired_difference({1: 0.5}, {2: 0.5}) is None and paired_text(None) == "–"
    one = paired_difference({1: 0.5}, {1: 0.6})
    assert math.isnan(one.stderr) and paired_text(one) == "-10.0 (better in 0 of 1)"
