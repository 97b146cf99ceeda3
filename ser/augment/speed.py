"""Speed perturbation as in Kaldi/sox `speed` (Ko et al. 2015; Latif et al. 2020, 4.3).

The signal is re-interpreted as sampled at sr·factor and resampled back to sr: it plays
`factor` times faster, so its duration becomes 1/factor of the original and every frequency
(pitch and formants) is multiplied by `factor`. This is sox's `speed` effect, not `tempo`.
"""
import re

import numpy as np

from ser.errors import SerError


def speed_perturb(wave, sr, factor):
    """Return the 1-D float32 signal `wave` (rate `sr`) played at `factor` × speed, still at `sr`."""
    from ser.audio import resample

    try:
        factor = float(factor)
    except (TypeError, ValueError):
        raise SerError(f"speed factor must be a number, got {factor!r}") from None
    if not np.isfinite(factor) or factor <= 0:
        raise SerError(f"speed factor must be > 0, got {factor}")
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise SerError(f"speed_perturb: expected a 1-D signal, got shape {wave.shape}")
    orig = int(round(sr * factor))
    if orig == sr:
        return wave.copy()
    return resample(wave, orig, int(sr))


# A wav.scp entry written by utils/perturb_data_dir_speed.sh: "[<source pipe> |] python3 -m
# ser.bin.speed_perturb --factor F <path or -> |".
_LAZY_ENTRY = re.compile(r"^(?:(?P<pipe>.*\|)\s*)?python3? -m ser\.bin\.speed_perturb --factor (?P<factor>\S+) "
                         r"(?P<src>\S+)\s*\|$")


def parse_lazy_entry(entry):
    """(factor, source entry) of a lazy speed-perturbation wav.scp entry, or None for any other.

    Lets a reader apply `speed_perturb` in its own process instead of starting a Python per
    utterance: read the source entry, then perturb. The only difference from running the pipe is
    the pipe's 16-bit quantisation of the output.
    """
    m = _LAZY_ENTRY.match(entry.strip())
    if m is None:
        return None
    pipe, src = m.group("pipe"), m.group("src")
    if (src == "-") != (pipe is not None):
        return None
    try:
        factor = float(m.group("factor"))
    except ValueError:
        return None
    return factor, (pipe.strip() if src == "-" else src)
