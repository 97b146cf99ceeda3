"""Cut an utterance's feature matrix into fixed-length segments (the paper's 256-frame windows).

The classifiers are trained on segments, each labelled with its utterance's emotion, and classify
an utterance by averaging the posteriors of its segments (ser/training/inference.py); the
diffusion model is trained on and generates mel segments (ser/diffusion/data.py).

- T <= length: one segment, padded at the end with `pad_value`. The classifiers pad with 0
  AFTER mean/variance normalisation, so a padded frame equals the training mean; the diffusion
  model pads its [-1, 1] scaled mel with -1, digital silence.
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


def cut_segment(feats, start, length, pad_value=0.0):
    """feats[start:start + length] as float32, padded at the end to `length` frames with pad_value."""
    seg = np.asarray(feats[start:start + length], dtype=np.float32)
    if seg.shape[0] < length:
        seg = np.concatenate([seg, np.full((length - seg.shape[0], seg.shape[1]), pad_value, np.float32)])
    return seg


def segment_matrix(feats, length=256, shift=128, pad_value=0.0):
    """(T, D) matrix -> (n, length, D) float32 array of segments, padded with pad_value."""
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise SerError(f"expected a (frames, dims) feature matrix, got shape {feats.shape}")
    starts = segment_starts(feats.shape[0], length, shift)
    return np.stack([cut_segment(feats, s, length, pad_value) for s in starts])
