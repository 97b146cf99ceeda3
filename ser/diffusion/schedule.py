"""Noise schedules: the cosine schedule of improved DDPM (Nichol & Dhariwal 2021, eq. 17).

Index convention used throughout `ser.diffusion`: arrays have length T and index i = 0..T-1
stands for the paper's step t = i + 1; x_0 is the data, so `betas[0]` is β_1.
"""
import math

import numpy as np

from ser.errors import SerError


def _check_steps(T):
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise SerError(f"diffusion: number of steps T must be a positive integer, got {T!r}")
    return int(T)


def cosine_alpha_bar(t, T, s=0.008):
    """ᾱ(t) = f(t)/f(0) with f(t) = cos²(((t/T) + s)/(1 + s) · π/2); t may be an array."""
    def f(u):
        return np.cos((np.asarray(u, dtype=np.float64) / T + s) / (1.0 + s) * math.pi / 2.0) ** 2
    return f(t) / f(0.0)


def cosine_betas(T, s=0.008, max_beta=0.999):
    """β_t = min(1 − ᾱ(t)/ᾱ(t−1), max_beta) for t = 1..T, float64 array of length T.

    The offset `s` keeps β_1 from being vanishingly small; clipping at `max_beta` avoids the
    singularity at t = T where ᾱ(T) = 0 (cos(π/2)).
    """
    T = _check_steps(T)
    if not 0.0 < max_beta <= 1.0:
        raise SerError(f"diffusion: max_beta must be in (0, 1], got {max_beta!r}")
    abar = cosine_alpha_bar(np.arange(T + 1), T, s)
    return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


def linear_betas(T, beta_start=1e-4, beta_end=0.02):
    """The linear schedule of Ho et al. (2020), scaled so that any T matches their T = 1000."""
    T = _check_steps(T)
    scale = 1000.0 / T
    return np.linspace(scale * beta_start, scale * beta_end, T, dtype=np.float64)


def make_betas(name, T):
    """Betas by schedule name: 'cosine' (default of the paper) or 'linear'."""
    if name == "cosine":
        return cosine_betas(T)
    if name == "linear":
        return linear_betas(T)
    raise SerError(f"diffusion: unknown noise schedule {name!r} (known: cosine, linear)")
