"""Strided sampling (improved DDPM §4): run the reverse process on S of the T trained steps.

Keeping ᾱ at the kept steps τ_1 < ... < τ_S and recomputing β_i = 1 − ᾱ_{τ_i}/ᾱ_{τ_{i−1}}
(ᾱ_{τ_0} = 1) defines a shorter process whose marginals q(x_{τ_i} | x_0) are those of the
original one, so the same trained model serves; it only has to be told the original step.
"""
import numpy as np
import torch

from ser.diffusion.gaussian_diffusion import GaussianDiffusion
from ser.diffusion.schedule import make_betas
from ser.errors import SerError


def space_timesteps(T, S):
    """S evenly spaced 0-based step indices out of T, always including the first and the last.

    S = T keeps every step; S = 1 keeps only the last (a one-shot x_T → x_0 prediction).
    """
    if isinstance(S, bool) or not isinstance(S, (int, np.integer)) or not 1 <= S <= T:
        raise SerError(f"diffusion: number of sampling steps must be an integer in [1, {T}], got {S!r}")
    if S == 1:
        return [T - 1]
    kept = sorted({int(round(x)) for x in np.linspace(0, T - 1, S)})
    assert len(kept) == S, (T, S, kept)      # spacing ≥ 1, so rounding never merges two steps
    return kept


def respace_betas(betas, use_timesteps):
    """(new_betas, timestep_map) of the process restricted to the 0-based steps `use_timesteps`.

    new_betas[i] = 1 − ᾱ[k_i]/ᾱ[k_{i−1}] for the sorted kept steps k (with ᾱ[k_{−1}] = 1), so
    the cumulative products of the new process equal ᾱ at the kept steps; timestep_map[i] = k_i
    is the original step the model must be given for new step i.
    """
    betas = np.asarray(betas, dtype=np.float64)
    kept = sorted({int(k) for k in use_timesteps})
    if not kept or kept[0] < 0 or kept[-1] >= betas.size:
        raise SerError(f"diffusion: kept steps must be in [0, {betas.size}), got {list(use_timesteps)!r}")
    abar = np.cumprod(1.0 - betas)[kept]
    prev = np.append(1.0, abar[:-1])
    return 1.0 - abar / prev, np.asarray(kept, dtype=np.int64)


class SpacedDiffusion(GaussianDiffusion):
    """The diffusion of `base_betas` restricted to `use_timesteps`; the model sees original steps."""

    def __init__(self, base_betas, use_timesteps, vlb_weight=0.001, **options):
        self.base_num_timesteps = int(np.asarray(base_betas).size)
        new_betas, self.timestep_map = respace_betas(base_betas, use_timesteps)
        super().__init__(new_betas, vlb_weight=vlb_weight, **options)

    def model_timesteps(self, t):
        """Original step index of each new step index in t."""
        key = ("timestep_map", t.device)
        table = self._cache.get(key)
        if table is None:
            table = torch.as_tensor(self.timestep_map, dtype=torch.long, device=t.device)
            self._cache[key] = table
        return table[t.long()]


def build_diffusion(conf=None, sampling_steps=None):
    """A (possibly strided) diffusion from a config dict.

    conf keys: `steps` (T, default 4000 as in the paper), `schedule` ('cosine' | 'linear'),
    `vlb_weight` (λ, default 0.001), `prediction` ('eps' | 'v' | 'x0', default 'eps' as in the
    paper), `variance_bound` ('none' | 'clamp' | 'sigmoid', default 'none' as in the paper; see
    ser.diffusion.gaussian_diffusion). `sampling_steps` S: None or T gives the full process, else a
    SpacedDiffusion over `space_timesteps(T, S)` (train with the full one, sample with either).
    """
    conf = dict(conf or {})
    known = {"steps": 4000, "schedule": "cosine", "vlb_weight": 0.001, "prediction": "eps", "variance_bound": "none"}
    unknown = sorted(set(conf) - set(known))
    if unknown:
        raise SerError(f"diffusion: unknown option(s) {', '.join(map(repr, unknown))} "
                       f"(known: {', '.join(sorted(known))})")
    conf = {**known, **conf}
    betas = make_betas(conf["schedule"], conf["steps"])
    options = {"vlb_weight": conf["vlb_weight"], "prediction": conf["prediction"],
               "variance_bound": conf["variance_bound"]}
    if sampling_steps is None or sampling_steps == conf["steps"]:
        return GaussianDiffusion(betas, **options)
    return SpacedDiffusion(betas, space_timesteps(conf["steps"], sampling_steps), **options)
