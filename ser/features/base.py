"""What every feature extractor shares: parameter schema, device choice, resampling, numpy I/O.

An extractor is built from a validated config dict (see ser.features.config). Subclasses declare
`PARAMS = {key: (type, default)}` and implement `compute(wave)` on a 1-D torch tensor that is
already at `self.sample_rate`; `__call__` accepts any rate, resamples on the extractor's device
with torchaudio's sinc interpolation (ser.audio.resample_tensor: torchaudio.functional.resample,
bit for bit, with the kernel built once) and returns float32 numpy (frames, dim).
`extract_all` computes several feature types from one read of a waveform, resampling it once per
target rate; each result equals the extractor's own call.
"""
import numpy as np
import torch

from ser.audio import resample_tensor
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

    def to_device(self, wave):
        """A 1-D array/tensor as a float32 tensor on the device (not resampled)."""
        x = torch.as_tensor(np.asarray(wave) if not torch.is_tensor(wave) else wave)
        if x.dim() != 1:
            raise SerError(f"expected a 1-D (mono) waveform, got shape {tuple(x.shape)}")
        return x.to(device=self.device, dtype=torch.float32)

    def prepare(self, wave, sample_rate):
        """Move a 1-D array/tensor to the device as float32 and resample it to self.sample_rate."""
        x = self.to_device(wave)
        if sample_rate != self.sample_rate:
            x = resample_tensor(x, int(sample_rate), self.sample_rate)
        return x

    def __call__(self, wave, sample_rate):
        """Waveform (any rate) -> float32 numpy array (frames, dim).

        Raises SerError when the (resampled) signal is too short for one frame.
        """
        return self.from_prepared(self.prepare(wave, sample_rate))

    def from_prepared(self, x):
        """What __call__ returns, from the output of prepare() (float32, at self.sample_rate)."""
        if x.numel() < self.min_samples:
            raise SerError(
                f"signal too short: {x.numel()} samples at {self.sample_rate} Hz, "
                f"'{self.TYPE}' needs at least {self.min_samples}")
        with torch.no_grad():
            feats = self.compute(x)
        return feats.to("cpu", torch.float32).numpy()


def extract_all(extractors, wave, sample_rate):
    """Features of every extractor from one waveform: a list of float32 numpy arrays, each equal
    to extractor(wave, sample_rate). The waveform is moved to each device once and resampled once
    per (device, target rate), not once per extractor. SerError as the extractors' own calls."""
    prepared = {}
    out = []
    for extractor in extractors:
        key = (extractor.device, extractor.sample_rate)
        if key not in prepared:
            native = prepared.get((extractor.device, None))
            if native is None:
                native = prepared[(extractor.device, None)] = extractor.to_device(wave)
            prepared[key] = (native if sample_rate == extractor.sample_rate
                             else resample_tensor(native, int(sample_rate), extractor.sample_rate))
        out.append(extractor.from_prepared(prepared[key]))
    return out


def window_tensor(name, length, periodic, dtype=torch.float64, device=None):
    """A named analysis window: 'hamming' or 'hann' (periodic = DFT-even, as scipy's default).

    Built in float64 and cast to the signal's dtype at use, so a float64 run is exact."""
    makers = {"hamming": torch.hamming_window, "hann": torch.hann_window}
    if name not in makers:
        raise SerError(f"window must be one of {sorted(makers)}, got '{name}'")
    return makers[name](length, periodic=periodic, dtype=dtype, device=device)
