"""Products with a matrix whose columns are each nonzero on a short run of rows (a resampling
kernel, a mel filterbank): `x @ matrix` computed group by group of columns over only the rows
the group touches, in float64.

A resampling kernel from 22.05 to 16 kHz is 459 x 320 with ~17 nonzero rows per column, an
80-band mel filterbank 513 x 80 with 2-30: multiplying by the whole matrix spends 90-96 % of the
work on zeros. float64, because the result is then thread-count independent once rounded to
float32 (a float32 BLAS product changes its last bits with the number of threads that share it).
"""
import numpy as np


class BandedMatrix:
    """`apply(x)` = x @ dense (float64) for x of shape (..., rows)."""

    def __init__(self, dense, group_size=16):
        dense = np.asarray(dense, dtype=np.float64)
        if dense.ndim != 2:
            raise ValueError(f"expected a matrix, got shape {dense.shape}")
        self.shape = dense.shape
        nonzero = dense != 0
        self.groups = []  # (first column, last column + 1, first row, last row + 1, block)
        for c0 in range(0, dense.shape[1], group_size):
            c1 = min(c0 + group_size, dense.shape[1])
            rows = np.flatnonzero(nonzero[:, c0:c1].any(axis=1))
            if rows.size == 0:
                continue
            r0, r1 = int(rows[0]), int(rows[-1]) + 1
            self.groups.append((c0, c1, r0, r1, np.ascontiguousarray(dense[r0:r1, c0:c1])))

    def apply(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.shape[0]:
            raise ValueError(f"cannot multiply shape {x.shape} by a {self.shape} matrix")
        out = np.zeros(x.shape[:-1] + (self.shape[1],))
        for c0, c1, r0, r1, block in self.groups:
            part = x[..., r0:r1]
            if part.ndim == 2 and part.strides[0] < (r1 - r0) * part.itemsize:
                part = np.ascontiguousarray(part)  # overlapping rows (a strided view) are no BLAS operand
            out[..., c0:c1] = part @ block
        return out
