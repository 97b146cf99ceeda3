"""Per-dimension mean/variance normalisation (CMVN) with statistics from training data only.

The statistics are part of the model (saved in model.pt): validation, test and attacked inputs
are normalised with the training statistics, never with their own. Optionally every utterance is
first normalised by its own statistics (`utterance_mvn`, ESPnet's utterance_mvn), which uses
nothing but the utterance itself.
"""
import numpy as np

from ser.errors import SerError

# A dimension that is constant over the training frames (e.g. a silent frequency bin) would
# divide by zero; its std is floored so that it normalises to ~0 instead.
STD_FLOOR = 1e-5


def compute_stats(mats):
    """Mean and std (population, ddof=0) per dimension over all frames of `mats`.

    Per-matrix float64 moments are merged with Chan et al.'s pairwise update, which avoids the
    cancellation of sum(x^2)/n - mean^2 for features with a large offset. Returns two float32
    (D,) arrays.
    """
    n = 0
    mean = m2 = None
    for m in mats:
        m = np.asarray(m, dtype=np.float64)
        if m.ndim != 2:
            raise SerError(f"expected (frames, dims) matrices, got shape {m.shape}")
        if mean is not None and m.shape[1] != mean.shape[0]:
            raise SerError(f"feature dimension {m.shape[1]} differs from {mean.shape[0]} of earlier matrices")
        nb = m.shape[0]
        if not nb:
            continue
        mean_b = m.mean(axis=0)
        m2_b = np.square(m - mean_b).sum(axis=0)
        if mean is None:
            n, mean, m2 = nb, mean_b, m2_b
            continue
        delta = mean_b - mean
        total = n + nb
        mean = mean + delta * (nb / total)
        m2 = m2 + m2_b + np.square(delta) * (n * nb / total)
        n = total
    if not n:
        raise SerError("no training frames to compute normalisation statistics from")
    std = np.maximum(np.sqrt(m2 / n), STD_FLOOR)
    return mean.astype(np.float32), std.astype(np.float32)


def utterance_mvn(mat, means=False, vars=False):
    """`mat` (T, D) with each dimension's mean over the utterance's frames subtracted (`means`) and
    divided by its std there (`vars`), as float32; unchanged when both are off.

    Frames whose dimensions are all equal carry no signal (digital silence, such as zero padding
    inside the audio file, sits at the feature floor in every bin): they are left out of the
    statistics, as ESPnet leaves out padded frames, so that the amount of padding does not shift an
    utterance; they are normalised with the rest. An utterance without such frames uses all.
    """
    mat = np.asarray(mat, dtype=np.float32)
    if not (means or vars):
        return mat
    if mat.ndim != 2 or not mat.shape[0]:
        raise SerError(f"utterance_mvn needs a (frames, dims) matrix with frames, got shape {mat.shape}")
    out = mat.astype(np.float64)
    signal = np.ptp(out, axis=1) > 0
    ref = out[signal] if signal.any() else out
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    if means:
        out -= mean
    if vars:
        out /= np.maximum(std, STD_FLOOR)
    return out.astype(np.float32)


def apply(mat, mean, std):
    """(mat - mean) / std as float32."""
    mat = np.asarray(mat, dtype=np.float32)
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    if mat.ndim != 2 or mat.shape[1] != mean.shape[0]:
        raise SerError(f"feature matrix of shape {mat.shape} does not match normalisation stats of dim {mean.shape[0]}")
    return (mat - mean) / std
