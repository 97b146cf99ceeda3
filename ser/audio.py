"""Reading, resampling and writing audio.

Audio is read with soundfile (torchaudio's load/save need torchcodec) and resampled with
torchaudio's band-limited sinc interpolation, computed in numpy (`Resampler`), so neither reading
nor resampling imports torch. A wav.scp value is either a file path or, as in Kaldi,
a shell command ending in '|' whose standard output is a WAV file (used for lazy speed
perturbation).
"""
import io
import math
import subprocess

import numpy as np
import soundfile as sf

from ser.banded import BandedMatrix
from ser.errors import SerError


def read_wav_entry(entry):
    """Read a wav.scp value: returns (float32 mono samples in [-1, 1], sample rate).

    Multi-channel audio is averaged to mono. Raises SerError naming the file (or command) when it
    cannot be read or holds no samples.
    """
    entry = entry.strip()
    from ser.augment.speed import parse_lazy_entry, speed_perturb

    lazy = parse_lazy_entry(entry)
    if lazy is not None:
        # Our own speed-perturbation pipe: run it in this process rather than starting a Python
        # (and importing torch) per utterance; equal to the pipe up to its 16-bit rounding.
        factor, source = lazy
        wave, sr = read_wav_entry(source)
        return speed_perturb(wave, sr, factor), sr
    try:
        if entry.endswith("|"):
            cmd = entry[:-1]
            proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if proc.returncode != 0:
                msg = proc.stderr.decode(errors="replace").strip().splitlines()
                raise SerError(f"command '{cmd}' failed: {msg[-1] if msg else proc.returncode}")
            data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
        else:   # opened here: libsndfile cannot take a file name that is not UTF-8
            with open(entry, "rb") as f:
                data, sr = sf.read(f, dtype="float32", always_2d=True)
    except SerError:
        raise
    except Exception as e:  # soundfile raises several types for unreadable files
        raise SerError(f"cannot read audio '{entry}': {e}") from None
    if data.shape[0] == 0:
        raise SerError(f"audio '{entry}' has no samples")
    # One channel: the samples themselves (what mean() over one value gives, without the pass).
    return (data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)), int(sr)


class Resampler:
    """Band-limited sinc resampling from orig_sr to new_sr Hz in numpy: torchaudio's
    `functional.resample` with its defaults (Hann-windowed sinc, lowpass_filter_width 6, rolloff
    0.99), the same kernel and the same output length, ceil(len * new_sr / orig_sr), computed in
    float64 (tests/test_audio_resample.py). numpy keeps torch out of the feature jobs: its import
    costs more CPU than the features of a whole corpus.

    With g = gcd(orig_sr, new_sr), every block of orig_sr / g input samples gives new_sr / g
    outputs, one per kernel column: the filtering is the product of the signal's overlapping
    blocks and the kernel, whose columns are nonzero on ~2 * 6 * orig / min(orig, new) rows only
    (ser.banded)."""

    def __init__(self, orig_sr, new_sr, lowpass_filter_width=6, rolloff=0.99):
        orig_sr, new_sr = int(orig_sr), int(new_sr)
        if orig_sr <= 0 or new_sr <= 0:
            raise SerError(f"sample rates must be positive, got {orig_sr} and {new_sr}")
        g = math.gcd(orig_sr, new_sr)
        self.orig, self.new = orig_sr // g, new_sr // g
        base = min(self.orig, self.new) * rolloff
        self.width = math.ceil(lowpass_filter_width * self.orig / base)
        idx = np.arange(-self.width, self.width + self.orig, dtype=np.float64) / self.orig
        t = (np.arange(0, -self.new, -1, dtype=np.float64)[:, None] / self.new + idx[None, :]) * base
        t = np.clip(t, -lowpass_filter_width, lowpass_filter_width)
        # The Hann window ends at |t| = width: exact zeros there (cos(pi/2) ** 2 is 4e-33 in
        # floating point), so the product skips them.
        window = np.where(np.abs(t) < lowpass_filter_width, np.cos(t * math.pi / lowpass_filter_width / 2) ** 2, 0.0)
        t *= math.pi
        with np.errstate(invalid="ignore", divide="ignore"):
            sinc = np.where(t == 0, 1.0, np.sin(t) / t)
        # (block length, outputs per block): block @ kernel gives one block's outputs
        self.kernel = BandedMatrix((sinc * window * (base / self.orig)).T)

    def __call__(self, wave):
        """1-D float array -> the resampled 1-D array, float64 arithmetic, in the input's float
        dtype (other dtypes: float32)."""
        x = np.asarray(wave)
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)
        n = len(x)
        padded = np.pad(np.asarray(x, dtype=np.float64), (self.width, self.width + self.orig))
        blocks = np.lib.stride_tricks.sliding_window_view(padded, self.kernel.shape[0])[::self.orig]
        out = self.kernel.apply(blocks).reshape(-1)[:-(-self.new * n // self.orig)]
        return out.astype(dtype, copy=False)


_RESAMPLERS = {}


def resample(wave, orig_sr, new_sr):
    """Resample a 1-D float array (band-limited sinc, see Resampler; the kernel is built once per
    rate pair and kept for the process). float32 or float64 in, the same dtype out (any other
    dtype: float32); at the same rate the samples come back unfiltered."""
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr == new_sr:
        x = np.asarray(wave)
        return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
    resampler = _RESAMPLERS.get((orig_sr, new_sr))
    if resampler is None:
        resampler = _RESAMPLERS[(orig_sr, new_sr)] = Resampler(orig_sr, new_sr)
    return resampler(wave)


def load_audio(entry, sample_rate=None):
    """Read a wav.scp value and resample it to `sample_rate` (None keeps the file's rate)."""
    wave, sr = read_wav_entry(entry)
    if sample_rate is not None and sr != sample_rate:
        wave, sr = resample(wave, sr, sample_rate), sample_rate
    return wave, sr


def write_wav(path, wave, sample_rate):
    """Write float samples as 16-bit PCM WAV (clipped to [-1, 1])."""
    sf.write(path, np.clip(np.asarray(wave), -1.0, 1.0), sample_rate, subtype="PCM_16")
