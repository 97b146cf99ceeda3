"""Log-likelihood pieces of the variational bound: Gaussian KL and the discretised decoder.

All functions work elementwise on broadcastable torch tensors and return nats; callers divide
by log(2) for bits.
"""
import math

import torch


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))), elementwise, in nats."""
    mean1, logvar1, mean2, logvar2 = (torch.as_tensor(a, dtype=torch.float32) if not torch.is_tensor(a)
                                      else a for a in (mean1, logvar1, mean2, logvar2))
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def discretized_gaussian_log_likelihood(x, means, log_scales, num_bins=256):
    """log P(x) of data in [-1, 1] quantised to `num_bins` levels under N(means, exp(log_scales)²).

    A value x is the centre of a bin of width 2/(num_bins - 1); its probability is the Gaussian
    mass over that bin, except that the lowest bin extends to -inf and the highest to +inf, so
    the probabilities of all bins sum to one. The exact normal CDF is used, and the difference
    of two CDFs is taken on the side of the mean where it does not cancel to zero.
    """
    half_bin = 1.0 / (num_bins - 1)
    centered = x - means
    inv_std = torch.exp(-log_scales)
    upper = inv_std * (centered + half_bin)
    lower = inv_std * (centered - half_bin)
    log_cdf_upper = torch.special.log_ndtr(upper)                 # lowest bin: P(X < upper edge)
    log_sf_lower = torch.special.log_ndtr(-lower)                 # highest bin: P(X > lower edge)
    # Mass between the edges: Φ(u) − Φ(l) = Φ(−l) − Φ(−u); use the form far from 1 to keep precision.
    delta = torch.where(centered > 0,
                        torch.special.ndtr(-lower) - torch.special.ndtr(-upper),
                        torch.special.ndtr(upper) - torch.special.ndtr(lower))
    log_delta = torch.log(delta.clamp(min=1e-12))
    edge = 1.0 - half_bin     # bin centres are at ±1 for the extreme bins; test with a margin
    return torch.where(x < -edge, log_cdf_upper, torch.where(x > edge, log_sf_lower, log_delta))


def mean_flat(x):
    """Mean over all dimensions but the batch dimension."""
    return x.mean(dim=tuple(range(1, x.dim())))


LOG2 = math.log(2.0)
