"""Reading, resampling and writing audio.

Audio is read with soundfile (torchaudio's load/save need torchcodec) and resampled with
torchaudio's band-limited sinc interpolation (torchaudio.functional.resample's defaults; the
kernel is built once per rate pair, see `resample_tensor`). torch is imported only when audio is
resampled, so reading audio stays light. A wav.scp value is either a file path or, as in Kaldi,
a shell command ending in '|' whose standard output is a WAV file (used for lazy speed
perturbation).
"""
import io
import subprocess

import numpy as np
import soundfile as sf

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
        else:
            data, sr = sf.read(entry, dtype="float32", always_2d=True)
    except SerError:
        raise
    except Exception as e:  # soundfile raises several types for unreadable files
        raise SerError(f"cannot read audio '{entry}': {e}") from None
    if data.shape[0] == 0:
        raise SerError(f"audio '{entry}' has no samples")
    # One channel: the samples themselves (what mean() over one value gives, without the pass).
    return (data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)), int(sr)


_RESAMPLERS = {}


def resample_tensor(x, orig_sr, new_sr):
    """Resample a float tensor (..., time) from orig_sr to new_sr Hz: equal, bit for bit, to
    torchaudio.functional.resample(x, orig_sr, new_sr) with its defaults (Hann-windowed sinc,
    lowpass_filter_width 6, rolloff 0.99), whose kernel costs more than the filtering of a
    few-second file: here it is built once per (rates, dtype, device) by
    torchaudio.transforms.Resample and kept for the process."""
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr == new_sr:
        return x
    key = (orig_sr, new_sr, x.dtype, x.device)
    resampler = _RESAMPLERS.get(key)
    if resampler is None:
        from torchaudio.transforms import Resample

        resampler = _RESAMPLERS[key] = Resample(orig_sr, new_sr, dtype=x.dtype).to(x.device)
    return resampler(x)


def resample(wave, orig_sr, new_sr):
    """Resample a 1-D float array with torchaudio (band-limited sinc interpolation)."""
    if orig_sr == new_sr:
        return np.asarray(wave, dtype=np.float32)
    import torch

    out = resample_tensor(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), orig_sr, new_sr)
    return out.numpy()


def load_audio(entry, sample_rate=None):
    """Read a wav.scp value and resample it to `sample_rate` (None keeps the file's rate)."""
    wave, sr = read_wav_entry(entry)
    if sample_rate is not None and sr != sample_rate:
        wave, sr = resample(wave, sr, sample_rate), sample_rate
    return wave, sr


def write_wav(path, wave, sample_rate):
    """Write float samples as 16-bit PCM WAV (clipped to [-1, 1])."""
    sf.write(path, np.clip(np.asarray(wave), -1.0, 1.0), sample_rate, subtype="PCM_16")
