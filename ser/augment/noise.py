"""Additive noise at an exact signal-to-noise ratio (SNR), for the noisy test sets of
Latif et al. 2020, 5.2 (speech at 0, 10 and 20 dB SNR with real background noise).

SNR = 10·log10(P_speech / P_noise), each power being the mean square over the whole utterance
(not over speech-active frames only), so silences in the utterance count towards P_speech.

`add_noise` returns speech + scaled noise in float32 and does not clip: a mixture may exceed
[-1, 1]. Clipping would change the noise actually added (and the SNR), so whoever writes the
mixture to a fixed-point file should scale the whole mixture down instead (which scales speech
and noise alike and keeps the SNR); ser/bin/make_noisy_data.py does that.
"""
import numpy as np

from ser.errors import SerError


def _power(x):
    return float(np.mean(np.square(x, dtype=np.float64)))


def measure_snr(speech, noise):
    """10·log10 of the ratio of the mean-square powers of two signals."""
    ps, pn = _power(speech), _power(noise)
    if ps <= 0.0 or pn <= 0.0:
        raise SerError("measure_snr: a signal has zero power")
    return 10.0 * np.log10(ps / pn)


def draw_offset(noise_len, length, rng):
    """Random start (in samples) of a `length`-sample excerpt of a noise of `noise_len` samples.

    A noise at least as long as the speech gets an excerpt wholly inside it (no wrap-around
    seam); a shorter one starts anywhere and is looped by `loop_excerpt`.
    """
    if noise_len <= 0:
        raise SerError("draw_offset: empty noise signal")
    if noise_len >= length:
        return int(rng.integers(0, noise_len - length + 1))
    return int(rng.integers(0, noise_len))


def loop_excerpt(noise, length, offset):
    """`length` samples of `noise` starting at `offset`, looping (tiling) past its end."""
    noise = np.asarray(noise)
    if noise.ndim != 1 or noise.size == 0:
        raise SerError(f"noise must be a non-empty 1-D array, got shape {noise.shape}")
    idx = (int(offset) + np.arange(int(length))) % noise.size
    return noise[idx]


def mix_at_snr(speech, noise, snr):
    """speech + g·noise with g chosen so that 10·log10(P_speech / P_(g·noise)) = snr exactly.

    `noise` must already have the speech's length. Returns float32. SerError for zero power.
    """
    speech = np.asarray(speech)
    noise = np.asarray(noise)
    if speech.ndim != 1 or noise.shape != speech.shape:
        raise SerError(f"speech {speech.shape} and noise {noise.shape} must be 1-D of equal length")
    ps, pn = _power(speech), _power(noise)
    if ps <= 0.0:
        raise SerError("add_noise: the speech has zero power (silent utterance)")
    if pn <= 0.0:
        raise SerError("add_noise: the noise excerpt has zero power (silent noise)")
    gain = np.sqrt(ps / (pn * 10.0 ** (float(snr) / 10.0)))
    return (speech.astype(np.float64) + gain * noise.astype(np.float64)).astype(np.float32)


def add_noise(speech, noise, snr_db, rng, offset=None):
    """Mix `noise` into `speech` (1-D float arrays at the same sample rate) at `snr_db` dB.

    The noise is cut to the speech length, or looped when shorter, starting at a random offset
    drawn from `rng` (a numpy Generator; see `draw_offset`) unless `offset` is given, which lets
    a caller reuse one excerpt at several SNRs. Returns the float32 mixture, not clipped.
    """
    speech = np.asarray(speech)
    noise = np.asarray(noise)
    if speech.ndim != 1 or speech.size == 0:
        raise SerError(f"speech must be a non-empty 1-D array, got shape {speech.shape}")
    if noise.ndim != 1 or noise.size == 0:
        raise SerError(f"noise must be a non-empty 1-D array, got shape {noise.shape}")
    if offset is None:
        offset = draw_offset(noise.size, speech.size, rng)
    return mix_at_snr(speech, loop_excerpt(noise, speech.size, offset), snr_db)
