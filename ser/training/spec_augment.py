"""SpecAugment-style masking (Park et al., Interspeech 2019) of normalised training segments.

Each segment of a batch gets `time_masks` spans of frames and `freq_masks` spans of bins set to
0; segments are mean/variance normalised with the training statistics, so 0 is the training
mean, as in SpecAugment's mean masking. A span's width is uniform in 0..width and its start uniform
over the positions where it fits. Time warping is left out (it needs interpolation of every
segment and gave the smallest gain in Park et al.'s ablation).

Masks are drawn for a whole (global) batch from the caller's generator, which is checkpointed
with the training state, so a resumed or data-parallel run masks exactly as a single process does.
"""
import torch


def draw_spans(count, length, width, batch, generator):
    """(batch, length) bool: True inside any of `count` random spans of 0..`width` positions."""
    mask = torch.zeros(batch, length, dtype=torch.bool)
    pos = torch.arange(length)
    for _ in range(count):
        w = torch.randint(0, min(width, length) + 1, (batch,), generator=generator)
        start = (torch.rand(batch, generator=generator) * (length - w + 1)).long()
        mask |= (pos >= start[:, None]) & (pos < (start + w)[:, None])
    return mask


def draw_masks(batch, frames, bins, conf, generator):
    """(time mask (batch, frames), frequency mask (batch, bins)) for the `spec_augment` config."""
    time = draw_spans(conf["time_masks"], frames, conf["time_width"], batch, generator)
    freq = draw_spans(conf["freq_masks"], bins, conf["freq_width"], batch, generator)
    return time, freq


def apply_masks(x, time, freq):
    """Segments x (batch, frames, bins) with the masked frames and bins set to 0."""
    keep = ~(time[:, :, None] | freq[:, None, :])
    return x * keep.to(device=x.device, dtype=x.dtype)
