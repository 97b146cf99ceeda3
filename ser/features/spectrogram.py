"""Log power spectrogram of paper 1 (DenseNet-LSTM-highway, section 4.2).

The paper: "STFT with an overlapping Hamming window of size 25 ms with a 10 ms shift ... height of
spectrogram equal to 128". Choices made here (the paper does not state them):

- audio at 16 kHz (EmoDB's 22.05 kHz copy is resampled with torchaudio's band-limited sinc);
- window: periodic (DFT-even) Hamming of 400 samples, 0.54 - 0.46 cos(2 pi n / 400), as
  scipy.signal.get_window('hamming', 400) and torch.hamming_window's default; each frame is
  zero-padded to n_fft = 512;
- framing as Kaldi with snip-edges: no centre padding, frame t covers samples
  [160 t, 160 t + 400), so frames = 1 + (N - 400) // 160 (N >= 400); no dithering, no DC removal,
  no pre-emphasis;
- power spectrum |X_k|^2 of the lowest 128 of the 257 bins: 0 .. 3968.75 Hz in 31.25 Hz steps
  (Satt et al., Interspeech 2017, whom the paper follows, keep 0-4 kHz);
- natural log of (power + log_floor), log_floor = 1e-8: the expected per-bin power of 16-bit
  quantisation noise (step 2^-15, variance 2^-30/12, band-limited to 8 kHz by the resampling,
  times sum(w^2) = 159 for this window: 9e-9). Smaller powers carry no information; EmoDB's
  zero-padded tails (3 % of frames are digital silence) then sit at log(1e-8) = -18.4 right below
  the quietest real content instead of 5 nats further down (measurements in
  egs/TEMPLATE/conf/feats/spec.yaml).

The frames are strided views of the signal, windowed, zero-padded to n_fft by numpy's rfft.
"""
import math

import numpy as np

from ser.errors import SerError
from ser.features.base import FeatureExtractor, analysis_window, frames_of


class Spectrogram(FeatureExtractor):
    """Log power spectrogram, float32 (frames, num_bins)."""

    TYPE = "spec"
    PARAMS = {
        "sample_rate": (int, 16000),
        "frame_length_ms": (float, 25.0),
        "frame_shift_ms": (float, 10.0),
        "n_fft": (int, 512),
        "num_bins": (int, 128),
        "window": (str, "hamming"),
        "periodic_window": (bool, True),
        "log_floor": (float, 1e-8),
    }

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        self.win_length = int(round(self.sample_rate * p["frame_length_ms"] / 1000.0))
        self.hop_length = int(round(self.sample_rate * p["frame_shift_ms"] / 1000.0))
        self.n_fft = int(p["n_fft"])
        self.dim = int(p["num_bins"])
        self.log_floor = float(p["log_floor"])
        if self.win_length < 1 or self.hop_length < 1:
            raise SerError("frame_length_ms and frame_shift_ms must give at least one sample")
        if self.n_fft < self.win_length:
            raise SerError(f"n_fft ({self.n_fft}) must be >= the window length ({self.win_length} samples)")
        if not 1 <= self.dim <= self.n_fft // 2 + 1:
            raise SerError(f"num_bins must be in 1..{self.n_fft // 2 + 1}, got {self.dim}")
        if not (self.log_floor > 0 and math.isfinite(self.log_floor)):
            raise SerError(f"log_floor must be a positive number, got {self.log_floor}")
        self.window = analysis_window(p["window"], self.win_length, bool(p["periodic_window"]))
        self.min_samples = self.win_length

    def num_frames(self, num_samples):
        if num_samples < self.win_length:
            return 0
        return 1 + (num_samples - self.win_length) // self.hop_length

    def bin_frequencies(self):
        """Centre frequency in Hz of each kept bin."""
        return [k * self.sample_rate / self.n_fft for k in range(self.dim)]

    def compute(self, wave):
        frames = frames_of(np.asarray(wave, dtype=np.float64), self.win_length, self.hop_length) * self.window
        spec = np.fft.rfft(frames, n=self.n_fft, axis=-1)[:, : self.dim]
        return np.log(np.square(spec.real) + np.square(spec.imag) + self.log_floor)
