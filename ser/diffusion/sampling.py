"""Strided sampling of mel segments from a trained diffusion model (used by ser.bin.generate and
the diagnostics of every run, ser.diffusion.diagnostics)."""
import sys

import numpy as np
import torch
from tqdm import tqdm

from ser.diffusion.guidance import guided_networks
from ser.diffusion.normalize import BandNorm
from ser.diffusion.respace import build_diffusion
from ser.runtime.precision import autocast, runnable_precision

#: a generated frame whose every band is below this is silence/padding (-1 = ln mel_floor)
PAD_THRESHOLD = -0.95


@torch.no_grad()
def sample_segments(nets, meta, conditions, sampling_steps, batch_size, device, seed, progress=True,
                    sampler="ancestral", eta=0.0, guidance_weight=None):
    """(len(conditions), n_mels, length) float32 samples in [-1, 1], in the order of `conditions`;
    `sampler`, `eta`: GaussianDiffusion.p_sample_loop's; `guidance_weight`: the autoguidance weight
    (None: the model's own, ser.diffusion.guidance)."""
    denoiser, conditioner = guided_networks(nets, meta, guidance_weight)
    process = build_diffusion(meta["process"], sampling_steps=sampling_steps)
    norm = BandNorm.from_meta(meta)
    if norm is not None:
        process.set_clip_bounds(*norm.bounds())
    shape = (meta["n_mels"], meta["segment"]["length"])
    gen = torch.Generator(device).manual_seed(seed)
    precision = runnable_precision(meta.get("precision", "fp32"), device)
    out = []
    batches = range(0, len(conditions), batch_size)
    for start in tqdm(batches, desc="generate", unit="batch", disable=not progress, file=sys.stderr,
                      mininterval=1.0 if sys.stderr.isatty() else 30.0):
        texts = conditions[start:start + batch_size]
        with autocast(precision, device):
            cond = conditioner(texts)
            x = process.p_sample_loop(denoiser, (len(texts),) + shape, cond, generator=gen, device=device,
                                      sampler=sampler, eta=eta)
        x = x.float() if norm is None else norm.inverse(x)
        out.append(x.clamp(-1.0, 1.0).cpu().numpy())
    return np.concatenate(out)
