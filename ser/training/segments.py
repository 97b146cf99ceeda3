"""Cut an utterance's feature matrix into fixed-length segments (the paper's 256-frame windows).

Models are trained on segments, each labelled with its utterance's emotion; an utterance is
classified by averaging the posteriors of its segments (ser/training/inference.py).

- T <= length: one segment, zero-padded at the end. Padding is applied AFTER mean/variance
  normalisation, so a padded frame equals the training mean.
- T > length: windows start at 0, shift, 2*shift, ... while they fit; if that leaves frames at
  the end uncovered, one more window aligned to the end (start T - length) is added, so no
  frame is dropped.
"""
import numpy as np

from ser.errors import SerError


def check_segment_params(length, shift):
    """SerError unless length and shift are positive integers."""
    for name, v in (("length", length), ("shift", shift)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise SerError(f"segment {name} must be a positive integer, got {v!r}")


def segment_starts(num_frames, length=256, shift=128):
    """Start frames of the segments of a T-frame utterance (see the module docstring)."""
    check_segment_params(length, shift)
    if num_frames <= 0:
        raise SerError(f"cannot segment an utterance with {num_frames} frames")
    if num_frames <= length:
        return [0]
    starts = list(range(0, num_frames - length + 1, shift))
    if starts[-1] + length < num_frames:
        starts.append(num_frames - length)
    return starts


def cut_segment(feats, start, length):
    """feats[start:start + length] as float32, zero-padded at the end to `length` frames."""
    seg = np.asarray(feats[start:start + length], dtype=np.float32)
    if seg.shape[0] < length:
        seg = np.concatenate([seg, np.zeros((length - seg.shape[0], seg.shape[1]), np.float32)])
    return seg


def segment_matrix(feats, length=256, shift=128):
    """(T, D) matrix -> (n, length, D) float32 array of segments."""
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise SerError(f"expected a (frames, dims) feature matrix, got shape {feats.shape}")
    starts = segment_starts(feats.shape[0], length, shift)
    return np.stack([cut_segment(feats, s, length) for s in starts])
