"""Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"):
sample with the prediction bad + w·(good − bad), where `good` is the trained model and `bad` the
same network's EMA weights at an earlier training step (`guidance.snapshot_step` of the
diffusion config; ser.diffusion.trainer keeps them, model.pt stores them as `guide`).

Why: on a CPU budget the unguided EmoDB model generates the coarse structure of speech (energy,
pauses, formant bands, the padded silence) but few pitch harmonics; the difference between the
model and its earlier self points towards the detail it has learned since, and extrapolating
along it brings the harmonic stripes out (RESULTS.md, egs/emodb). Only the prediction channels
(ε, v or x0: all linear in the output) are extrapolated; the learned-variance channels are the
trained model's. w = 1 is the unguided model; the paper samples without guidance.
"""
import torch

from ser.errors import SerError


class AutoGuidedDenoiser(torch.nn.Module):
    """A denoiser whose prediction channels are guide + weight·(main − guide). Called as the
    denoiser is, with `cond` the pair (main's condition, guide's condition): the two networks
    have their own conditioners."""

    def __init__(self, main, guide, weight):
        super().__init__()
        self.main, self.guide, self.weight = main, guide, float(weight)

    def forward(self, x, t, cond):
        main_cond, guide_cond = cond
        good = self.main(x, t, main_cond).float()
        bad = self.guide(x, t, guide_cond).float()
        c = x.shape[1]
        pred = bad[:, :c] + self.weight * (good[:, :c] - bad[:, :c])
        return torch.cat([pred, good[:, c:]], dim=1)


def guidance_weight(meta, weight=None):
    """The guidance weight to sample with: `weight` when given, else the model's training
    config's `guidance.weight` (1.0, no guidance, for a model trained without it)."""
    if weight is not None:
        return float(weight)
    return float(meta.get("config", {}).get("guidance", {}).get("weight", 1.0))


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
    return AutoGuidedDenoiser(nets["denoiser"], guide["denoiser"], w), conditions
