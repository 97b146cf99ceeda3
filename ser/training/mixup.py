"""Mixup (Zhang et al., ICLR 2018; paper eq. 3-4) on normalised feature segments.

    x~ = lam * x_i + (1 - lam) * x_j,   y~ = lam * y_i + (1 - lam) * y_j,   lam ~ Beta(alpha, alpha)

One lam per BATCH, as in the reference implementation of the mixup paper; j runs over a random
permutation of the batch. The loss is the cross-entropy against the soft labels y~.

All randomness comes from the caller's torch.Generator (checkpointed with the training state),
so a resumed run draws the same lam and permutations as an uninterrupted one.
"""
import numpy as np
import torch
import torch.nn.functional as F

from ser.errors import SerError


def sample_lambda(alpha, generator):
    """lam ~ Beta(alpha, alpha), drawn reproducibly from a torch.Generator.

    torch.distributions cannot take a generator, so a 63-bit seed is drawn from it and used for
    a numpy Beta sample.
    """
    if not alpha > 0:
        raise SerError(f"mixup alpha must be > 0, got {alpha!r}")
    seed = int(torch.randint(0, 2 ** 63 - 1, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup_batch(x, y_onehot, alpha, generator):
    """Mix a batch with a permutation of itself: returns (x_mix, y_mix, lam).

    x: (B, ...) float tensor, y_onehot: (B, C) float tensor (one-hot or already soft), on any
    device; generator: a CPU torch.Generator.
    """
    if x.shape[0] != y_onehot.shape[0]:
        raise SerError(f"mixup: {x.shape[0]} inputs but {y_onehot.shape[0]} labels")
    lam = sample_lambda(alpha, generator)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    x_mix = lam * x + (1.0 - lam) * x[perm]
    y_mix = lam * y_onehot + (1.0 - lam) * y_onehot[perm]
    return x_mix, y_mix, lam


def soft_cross_entropy(logits, targets, weights=None):
    """Mean over the batch of -sum_c w[c] * targets[c] * log softmax(logits)[c]; w = 1 unless
    `weights` (C,) are given (ser.training.class_weights)."""
    terms = targets * F.log_softmax(logits, dim=-1)
    if weights is not None:
        terms = terms * weights
    return -terms.sum(dim=-1).mean()


def smooth_labels(targets, epsilon):
    """Label smoothing of (soft) targets: (1 - epsilon) * targets + epsilon / C."""
    if epsilon == 0:
        return targets
    return (1.0 - epsilon) * targets + epsilon / targets.shape[-1]
