"""Log mel spectrogram of paper 2 (diffusion-augmented SER, section 4.2), scaled to [-1, 1].

The paper: "STFT of size 1024, 256 hop-size, and a window size of 1024 ... 0-8 kHz ... 80 Mel
frequency bands scaled linearly in the range of [-1, 1]". The rest follows HiFi-GAN's
`mel_spectrogram` (the vocoder such diffusion models are paired with), so the features can later
be turned back into audio:

- audio at 22050 Hz;
- periodic Hann window of 1024 samples, n_fft 1024, hop 256;
- padding as HiFi-GAN: reflect-pad (n_fft - hop) / 2 = 384 samples at each end, then frames
  without further centring, so frames = N // 256 and frame t is centred on sample 256 t + 128
  (librosa's center=True would give 1 + N // 256). Needs N > 384 for the reflection;
- magnitude |X_k| (not power), mel filterbank with the Slaney mel scale (linear below 1 kHz,
  logarithmic above) and Slaney area normalisation (2 / (f_right - f_left) per band), 0-8000 Hz:
  librosa.filters.mel's defaults, which HiFi-GAN uses (`mel_filterbank`, in float64; also the
  HTK scale and no normalisation);
- natural log of max(mel, mel_floor = 1e-5) (HiFi-GAN's dynamic_range_compression);
- fixed linear map of the log value: log(scale_min_mel) -> -1, log(scale_max_mel) -> +1, values
  outside are clipped. The bounds do not depend on the data, so `mel_to_log` inverts the map
  exactly (for unclipped values) before Griffin-Lim or a vocoder. The default bounds and their
  justification from measurements on EmoDB are in egs/TEMPLATE/conf/feats/mel.yaml.
"""
import math

import numpy as np

from ser.banded import BandedMatrix
from ser.errors import SerError
from ser.features.base import FeatureExtractor, analysis_window, frames_of

#: Default scaling bounds (mel magnitudes whose logs map to -1 and +1).
DEFAULT_SCALE_MIN_MEL = 1e-5
DEFAULT_SCALE_MAX_MEL = 10.0


def _log_bounds(scale_min_mel, scale_max_mel):
    return math.log(scale_min_mel), math.log(scale_max_mel)


def log_to_scaled(log_mel, scale_min_mel=DEFAULT_SCALE_MIN_MEL, scale_max_mel=DEFAULT_SCALE_MAX_MEL):
    """Map log-mel values linearly so log(scale_min_mel) -> -1, log(scale_max_mel) -> 1; clip."""
    lo, hi = _log_bounds(scale_min_mel, scale_max_mel)
    y = (log_mel - lo) * (2.0 / (hi - lo)) - 1.0
    return y.clamp(-1.0, 1.0) if hasattr(y, "clamp") else np.clip(y, -1.0, 1.0)  # a tensor, or numpy


def mel_to_log(x, scale_min_mel=DEFAULT_SCALE_MIN_MEL, scale_max_mel=DEFAULT_SCALE_MAX_MEL):
    """Inverse of the [-1, 1] scaling: scaled mel features -> natural-log mel magnitudes.

    Works on numpy arrays and torch tensors. exp() of the result is the mel magnitude spectrogram
    (values that were clipped come back as the bound). Pass the bounds of the config used.
    """
    lo, hi = _log_bounds(scale_min_mel, scale_max_mel)
    return (x + 1.0) * ((hi - lo) / 2.0) + lo


def hz_to_mel(hz, scale):
    """Mel value of frequencies in Hz: 'htk' (2595 log10(1 + f/700)) or 'slaney' (linear,
    3 mels per 200 Hz, below 1 kHz; logarithmic, 27 mels per factor 6.4, above)."""
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1000.0) / 1000.0) * (27.0 / math.log(6.4)),
                    hz * 3.0 / 200.0)


def mel_to_hz(mel, scale):
    """Inverse of hz_to_mel."""
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    return np.where(mel >= 15.0, 1000.0 * np.exp((mel - 15.0) * (math.log(6.4) / 27.0)), mel * 200.0 / 3.0)


def mel_filterbank(n_fft, sample_rate, num_mels, f_min, f_max, scale="slaney", norm="slaney"):
    """(n_fft // 2 + 1, num_mels) float64 triangles, equally spaced on the mel scale between f_min
    and f_max, over the rfft bins 0 .. sample_rate / 2; norm 'slaney' divides each by half its
    width in Hz (equal area), 'none' keeps peak 1. librosa.filters.mel and
    torchaudio.functional.melscale_fbanks build the same (tests/test_features.py)."""
    bins_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), num_mels + 2), scale)
    rising = (bins_hz[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    falling = (edges[None, 2:] - bins_hz[:, None]) / (edges[2:] - edges[1:-1])
    fb = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        fb *= 2.0 / (edges[2:] - edges[:-2])
    return fb


class MelSpectrogram(FeatureExtractor):
    """Log mel magnitude spectrogram scaled to [-1, 1], float32 (frames, num_mels)."""

    TYPE = "mel"
    PARAMS = {
        "sample_rate": (int, 22050),
        "n_fft": (int, 1024),
        "win_length": (int, 1024),
        "hop_length": (int, 256),
        "window": (str, "hann"),
        "num_mels": (int, 80),
        "f_min": (float, 0.0),
        "f_max": (float, 8000.0),
        "mel_scale": (str, "slaney"),
        "mel_norm": (str, "slaney"),
        "mel_floor": (float, 1e-5),
        "scale_min_mel": (float, DEFAULT_SCALE_MIN_MEL),
        "scale_max_mel": (float, DEFAULT_SCALE_MAX_MEL),
    }

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        self.n_fft, self.win_length = int(p["n_fft"]), int(p["win_length"])
        self.hop_length, self.dim = int(p["hop_length"]), int(p["num_mels"])
        if not 1 <= self.win_length <= self.n_fft:
            raise SerError(f"win_length must be in 1..n_fft ({self.n_fft}), got {self.win_length}")
        if not 1 <= self.hop_length <= self.n_fft:
            raise SerError(f"hop_length must be in 1..n_fft ({self.n_fft}), got {self.hop_length}")
        if not 0 <= p["f_min"] < p["f_max"] <= self.sample_rate / 2:
            raise SerError(f"need 0 <= f_min < f_max <= {self.sample_rate / 2}, got f_min={p['f_min']} f_max={p['f_max']}")
        if p["mel_scale"] not in ("slaney", "htk"):
            raise SerError(f"mel_scale must be 'slaney' or 'htk', got '{p['mel_scale']}'")
        if p["mel_norm"] not in ("slaney", "none"):
            raise SerError(f"mel_norm must be 'slaney' or 'none', got '{p['mel_norm']}'")
        if not 0 < p["mel_floor"] <= p["scale_min_mel"] < p["scale_max_mel"]:
            raise SerError("need 0 < mel_floor <= scale_min_mel < scale_max_mel, got "
                           f"{p['mel_floor']}, {p['scale_min_mel']}, {p['scale_max_mel']}")
        self.pad = (self.n_fft - self.hop_length) // 2
        # A window shorter than n_fft sits in the middle of the frame, zeros around it (torch.stft).
        window = np.zeros(self.n_fft)
        left = (self.n_fft - self.win_length) // 2
        window[left:left + self.win_length] = analysis_window(p["window"], self.win_length, True)
        self.window = window
        self.fbank = mel_filterbank(self.n_fft, self.sample_rate, self.dim, float(p["f_min"]),
                                    float(p["f_max"]), p["mel_scale"], p["mel_norm"])
        self._fbank_product = BandedMatrix(self.fbank, group_size=8)  # bands span 2-30 bins
        self.min_samples = max(self.pad + 1, self.n_fft - 2 * self.pad)

    def num_frames(self, num_samples):
        if num_samples < self.min_samples:
            return 0
        return 1 + (num_samples + 2 * self.pad - self.n_fft) // self.hop_length

    def log_mel(self, wave):
        """1-D float array at self.sample_rate -> natural-log mel magnitudes (frames, num_mels),
        float64."""
        x = np.pad(np.asarray(wave, dtype=np.float64), self.pad, mode="reflect")
        frames = frames_of(x, self.n_fft, self.hop_length) * self.window
        magnitude = np.abs(np.fft.rfft(frames, axis=-1))  # (frames, n_fft // 2 + 1)
        return np.log(np.maximum(self._fbank_product.apply(magnitude), self.params["mel_floor"]))

    def compute(self, wave):
        return log_to_scaled(self.log_mel(wave), self.params["scale_min_mel"], self.params["scale_max_mel"])

    def to_log(self, x):
        """Inverse of this extractor's [-1, 1] scaling (see mel_to_log)."""
        return mel_to_log(x, self.params["scale_min_mel"], self.params["scale_max_mel"])
