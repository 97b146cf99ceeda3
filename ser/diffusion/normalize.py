"""Per-band mean/variance normalisation of the scaled mel before diffusion (`normalize: band`).

The scaled mel is in [-1, 1] but its bands are far from the N(0, 1)-like data the noise
schedule assumes: low bands sit high with a small spread, high bands near the floor. With
`band`, each band b is mapped to (x − m_b)/(k·s_b), where m_b and s_b are the mean and standard
deviation of band b over the fold's TRAINING segments (padding included: the model must produce
it) and k = `normalize_scale` standard deviations map to 1. The statistics are stored in the
model's meta, predicted x0 is clipped to the image of [-1, 1] (per band), and sampled segments
are mapped back with x = m_b + k·s_b·y before they are written. With `none` (paper) the data is
used as it is.
"""
import numpy as np
import torch

from ser.errors import SerError

#: a band's standard deviation is at least this (a constant band would divide by 0)
MIN_STD = 1e-3


class BandNorm:
    """y = (x − mean)/(scale·std) per band (dim 1 of (B, n_mels, F) segments)."""

    def __init__(self, mean, std, scale):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.maximum(np.asarray(std, dtype=np.float64), MIN_STD)
        self.scale = float(scale)
        if self.mean.shape != self.std.shape or self.mean.ndim != 1 or self.scale <= 0:
            raise SerError("normalize: mean and std must be 1-D of the same size and scale > 0")

    @classmethod
    def from_segments(cls, segments, scale):
        """Statistics of (N, n_mels, F) segments, in float64."""
        x = np.asarray(segments, dtype=np.float64)
        return cls(x.mean(axis=(0, 2)), x.std(axis=(0, 2)), scale)

    def _ab(self, like):
        mean = torch.as_tensor(self.mean, dtype=torch.float32, device=like.device)[:, None]
        div = torch.as_tensor(self.scale * self.std, dtype=torch.float32, device=like.device)[:, None]
        return mean, div

    def forward(self, x):
        mean, div = self._ab(x)
        return ((x.float() - mean) / div).to(x.dtype)

    def inverse(self, y):
        mean, div = self._ab(y)
        return y.float() * div + mean

    def bounds(self):
        """(low, high) of shape (n_mels, 1): the image of [-1, 1] (clip range of predicted x0)."""
        low = (-1.0 - self.mean) / (self.scale * self.std)
        high = (1.0 - self.mean) / (self.scale * self.std)
        return (torch.as_tensor(low, dtype=torch.float32)[:, None], torch.as_tensor(high, dtype=torch.float32)[:, None])

    def to_meta(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "scale": self.scale}

    @classmethod
    def from_meta(cls, meta):
        """The BandNorm of a model's meta, or None when it was trained without normalisation."""
        norm = meta.get("normalize")
        return None if not norm else cls(norm["mean"], norm["std"], norm["scale"])
