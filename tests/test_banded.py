"""ser.banded.BandedMatrix: x @ matrix over the rows each column group touches, equal to the
dense product."""
import numpy as np
import pytest

from ser.banded import BandedMatrix


def banded(rows, cols, width, rng):
    dense = np.zeros((rows, cols))
    for c in range(cols):
        start = (c * (rows - width)) // max(cols - 1, 1)
        dense[start:start + width, c] = rng.standard_normal(width)
    dense[:, cols // 2] = 0.0  # an all-zero column
    return dense


@pytest.mark.parametrize("group_size", [1, 3, 16, 1000])
def test_equals_the_dense_product(group_size):
    rng = np.random.default_rng(0)
    dense = banded(60, 25, 7, rng)
    m = BandedMatrix(dense, group_size=group_size)
    x = rng.standard_normal((11, 60))
    np.testing.assert_allclose(m.apply(x), x @ dense, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.apply(x[0]), x[0] @ dense, rtol=0, atol=1e-12)  # 1-D input
    # overlapping rows (a strided view of a signal, as the resampler passes) and float32 input
    signal = rng.standard_normal(400).astype(np.float32)
    view = np.lib.stride_tricks.sliding_window_view(signal, 60)[::13]
    out = m.apply(view)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, view.astype(np.float64) @ dense, rtol=0, atol=1e-12)
    # each group multiplies only its rows: fewer than the whole matrix unless one group holds all
    touched = sum((r1 - r0) * (c1 - c0) for c0, c1, r0, r1, _ in m.groups)
    assert touched < 60 * 25 if group_size < 25 else touched <= 60 * 25


def test_shape_errors():
    with pytest.raises(ValueError, match="matrix"):
        BandedMatrix(np.zeros(5))
    with pytest.raises(ValueError, match="cannot multiply"):
        BandedMatrix(np.eye(4)).apply(np.zeros((2, 5)))
