"""Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"):
sample with the prediction bad + w·(good − bad), where `good` is the trained model and `bad` the
same network's EMA weights at an earlier training step (`guidance.snapshot_step` of the
diffusion config; ser.diffusion.trainer keeps them, model.pt stores them as `guide`).

Why: on a CPU budget the unguided EmoDB model generates the coarse structure of speech (energy,
pauses, formant bands, the padded silence) but few pitch harmonics; the difference between the
model and its earlier self points towards the detail it has learned since, and extrapolating
along it brings the harmonic stripes out (RESULTS.md, egs/emodb). Only the prediction channels
(ε, v or x0: all linear in the output) are extrapolated; the learned-variance channels are the
trained model's. `guidance.max_t_fraction` limits the guidance to the steps t < fraction·T
(Kynkäänniemi et al. 2024, guidance in a limited interval): on EmoDB the harmonics are decided at
low noise, while guiding the high-noise steps mostly moves the segments' coarse layout away from
real speech. w = 1 is the unguided model; the paper samples without guidance.
"""
import torch

from ser.diffusion.config import DEFAULTS
from ser.errors import SerError


def _settings(meta):
    """The `guidance` section of a model's training config, with the defaults for a model trained
    before it existed (no guidance)."""
    return {**DEFAULTS["guidance"], **meta.get("config", {}).get("guidance", {})}


class AutoGuidedDenoiser(torch.nn.Module):
    """A denoiser whose prediction channels are guide + weight·(main − guide). Called as the
    denoiser is, with `cond` the pair (main's condition, guide's condition): the two networks
    have their own conditioners."""

    def __init__(self, main, guide, weight, max_t=None):
        super().__init__()
        self.main, self.guide, self.weight, self.max_t = main, guide, float(weight), max_t

    def forward(self, x, t, cond):
        """`t`: the original process steps (guidance where t < max_t; everywhere when None)."""
        main_cond, guide_cond = cond
        good = self.main(x, t, main_cond).float()
        use = torch.ones_like(t, dtype=torch.bool) if self.max_t is None else t < self.max_t
        if not bool(use.any()):
            return good
        bad = self.guide(x, t, guide_cond).float()
        c = x.shape[1]
        pred = bad[:, :c] + self.weight * (good[:, :c] - bad[:, :c])
        pred = torch.where(use.reshape((-1,) + (1,) * (x.dim() - 1)), pred, good[:, :c])
        return torch.cat([pred, good[:, c:]], dim=1)


def guidance_weight(meta, weight=None):
    """The guidance weight to sample with: `weight` when given, else the model's training
    config's `guidance.weight` (1.0, no guidance, for a model trained without it)."""
    return float(weight if weight is not None else _settings(meta)["weight"])


def guidance_max_t(meta):
    """The first step without guidance: max_t_fraction·T of the model's config (None: all steps)."""
    fraction = float(_settings(meta)["max_t_fraction"])
    return None if fraction >= 1.0 else fraction * meta["process"]["steps"]


def guided_networks(nets, meta, weight=None):
    """(denoiser, conditioner) to sample with: the model's own at weight 1, else an
    AutoGuidedDenoiser and a conditioner returning the pair of conditions. SerError when the
    weight asks for guidance and the model kept no guide snapshot."""
    w = guidance_weight(meta, weight)
    if w == 1.0:
        return nets["denoiser"], nets["conditioner"]
    if "guide" not in nets:
        raise SerError(f"guidance weight {w:g}: the diffusion model has no guide snapshot "
                       f"(train it with guidance.snapshot_step > 0, or sample with weight 1)")
    guide = nets["guide"]

    def conditions(texts):
        return nets["conditioner"](texts), guide["conditioner"](texts)
    return AutoGuidedDenoiser(nets["denoiser"], guide["denoiser"], w, guidance_max_t(meta)), conditions
