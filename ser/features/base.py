"""What every feature extractor shares: parameter schema, device choice, resampling, numpy I/O.

An extractor is built from a validated config dict (see ser.features.config). Subclasses declare
`PARAMS = {key: (type, default)}` and implement `compute(wave)` on a 1-D torch tensor that is
already at `self.sample_rate`; `__call__` accepts any rate, resamples on the extractor's device
with torchaudio (the same call as ser.audio.resample) and returns float32 numpy (frames, dim).
"""
import numpy as np
import torch
import torchaudio.functional as AF

from ser.errors import SerError


def resolve_device(device=None):
    """'auto' or None -> CUDA when available, else CPU; anything else is passed to torch.device."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class FeatureExtractor:
    """Base class: holds the parameters, the device and the resampling step."""

    #: key -> (python type, default); `type` is not listed (it selects the class).
    PARAMS = {}

    def __init__(self, device=None, **params):
        unknown = set(params) - set(self.PARAMS)
        if unknown:
            raise SerError(f"unknown parameter '{sorted(unknown)[0]}' for feature type '{self.TYPE}'")
        self.params = {k: params.get(k, default) for k, (_, default) in self.PARAMS.items()}
        self.device = resolve_device(device)
        self.sample_rate = int(self.params["sample_rate"])
        if self.sample_rate <= 0:
            raise SerError(f"sample_rate must be positive, got {self.sample_rate}")

    # Subclasses set: dim (feature dimension), hop_length (samples), min_samples.
    @property
    def frame_shift(self):
        """Seconds between frames."""
        return self.hop_length / self.sample_rate

    def config(self):
        """The full parameter dict (with `type`), e.g. to record next to the features."""
        return {"type": self.TYPE, **self.params}

    def num_frames(self, num_samples):
        """Frames produced for `num_samples` samples at `self.sample_rate`."""
        raise NotImplementedError

    def compute(self, wave):
        """1-D tensor at self.sample_rate -> (frames, dim) tensor, same dtype and device."""
        raise NotImplementedError

    def prepare(self, wave, sample_rate):
        """Move a 1-D array/tensor to the device as float32 and resample it to self.sample_rate."""
        x = torch.as_tensor(np.asarray(wave) if not torch.is_tensor(wave) else wave)
        if x.dim() != 1:
            raise SerError(f"expected a 1-D (mono) waveform, got shape {tuple(x.shape)}")
        x = x.to(device=self.device, dtype=torch.float32)
        if sample_rate != self.sample_rate:
            x = AF.resample(x, int(sample_rate), self.sample_rate)
        return x

    def __call__(self, wave, sample_rate):
        """Waveform (any rate) -> float32 numpy array (frames, dim).

        Raises SerError when the (resampled) signal is too short for one frame.
        """
        x = self.prepare(wave, sample_rate)
        if x.numel() < self.min_samples:
            raise SerError(
                f"signal too short: {x.numel()} samples at {self.sample_rate} Hz, "
                f"'{self.TYPE}' needs at least {self.min_samples}")
        with torch.no_grad():
            feats = self.compute(x)
        return feats.to("cpu", torch.float32).numpy()


def window_tensor(name, length, periodic, dtype=torch.float64, device=None):
    """A named analysis window: 'hamming' or 'hann' (periodic = DFT-even, as scipy's default).

    Built in float64 and cast to the signal's dtype at use, so a float64 run is exact."""
    makers = {"hamming": torch.hamming_window, "hann": torch.hann_window}
    if name not in makers:
        raise SerError(f"window must be one of {sorted(makers)}, got '{name}'")
    return makers[name](length, periodic=periodic, dtype=dtype, device=device)
