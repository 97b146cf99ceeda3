"""What every feature extractor shares: parameter schema, resampling, windows, numpy in and out.

An extractor is built from a validated config dict (see ser.features.config). Subclasses declare
`PARAMS = {key: (type, default)}` and implement `compute(wave)` on a 1-D float64 array that is
already at `self.sample_rate`, in float64; `__call__` accepts any rate, resamples with
torchaudio's band-limited sinc (ser.audio.resample, in numpy) and returns the features rounded
once to float32 (frames, dim). float64 costs little here (the FFTs of numpy are as fast in float64
as in float32) and makes the result independent of how many threads numpy's BLAS uses.
`extract_all` computes several feature types from one read of a waveform, resampling it once per
target rate; each result equals the extractor's own call.

Everything is numpy: a feature job never imports torch, whose import alone costs more CPU than
the features of a whole corpus.
"""
import numpy as np

from ser.audio import resample
from ser.errors import SerError


class FeatureExtractor:
    """Base class: holds the parameters and the resampling step."""

    #: key -> (python type, default); `type` is not listed (it selects the class).
    PARAMS = {}

    def __init__(self, **params):
        unknown = set(params) - set(self.PARAMS)
        if unknown:
            raise SerError(f"unknown parameter '{sorted(unknown)[0]}' for feature type '{self.TYPE}'")
        self.params = {k: params.get(k, default) for k, (_, default) in self.PARAMS.items()}
        self.sample_rate = int(self.params["sample_rate"])
        if self.sample_rate <= 0:
            raise SerError(f"sample_rate must be positive, got {self.sample_rate}")

    # Subclasses set: dim (feature dimension) and min_samples (the shortest input giving a frame).
    @classmethod
    def label(cls, config):
        """How reports name the features of `config` (a full config dict, e.g. a feats dir's
        conf.yaml): the type."""
        return cls.TYPE

    def config(self):
        """The full parameter dict (with `type`), e.g. to record next to the features."""
        return {"type": self.TYPE, **self.params}

    def num_frames(self, num_samples):
        """Frames produced for `num_samples` samples at `self.sample_rate`."""
        raise NotImplementedError

    def compute(self, wave):
        """1-D float64 array at self.sample_rate -> (frames, dim) float64 array."""
        raise NotImplementedError

    def prepare(self, wave, sample_rate):
        """A 1-D array as float64, resampled to self.sample_rate."""
        return resample(as_mono_float64(wave), int(sample_rate), self.sample_rate)

    def __call__(self, wave, sample_rate):
        """Waveform (any rate) -> float32 numpy array (frames, dim).

        Raises SerError when the (resampled) signal is too short for one frame.
        """
        return self.from_prepared(self.prepare(wave, sample_rate))

    def from_prepared(self, x):
        """What __call__ returns, from the output of prepare() (float64, at self.sample_rate)."""
        if x.size < self.min_samples:
            raise SerError(
                f"signal too short: {x.size} samples at {self.sample_rate} Hz, "
                f"'{self.TYPE}' needs at least {self.min_samples}")
        return np.asarray(self.compute(x), dtype=np.float32)


def as_mono_float64(wave):
    """A 1-D array (or tensor: anything np.asarray takes) as float64; SerError for other shapes."""
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 1:
        raise SerError(f"expected a 1-D (mono) waveform, got shape {x.shape}")
    return x


def extract_all(extractors, wave, sample_rate):
    """Features of every extractor from one waveform: a list of float32 numpy arrays, each equal
    to extractor(wave, sample_rate). The waveform is resampled once per target rate, not once per
    extractor. SerError as the extractors' own calls."""
    native = as_mono_float64(wave)
    prepared = {}
    out = []
    for extractor in extractors:
        rate = extractor.sample_rate
        if rate not in prepared:
            prepared[rate] = resample(native, int(sample_rate), rate)
        out.append(extractor.from_prepared(prepared[rate]))
    return out


def analysis_window(name, length, periodic):
    """A named analysis window in float64: 'hamming' (0.54 - 0.46 cos) or 'hann'; periodic =
    DFT-even (scipy.signal.get_window's default), else symmetric."""
    if name not in ("hamming", "hann"):
        raise SerError(f"window must be one of ['hamming', 'hann'], got '{name}'")
    denom = length if periodic else max(length - 1, 1)
    phase = np.cos(2.0 * np.pi * np.arange(length) / denom)
    return 0.54 - 0.46 * phase if name == "hamming" else 0.5 - 0.5 * phase


def frames_of(x, length, hop):
    """(frames, length) strided view of a 1-D array: frame t = x[t * hop : t * hop + length]."""
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop]
