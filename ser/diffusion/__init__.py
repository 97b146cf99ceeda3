"""Improved DDPM (Nichol & Dhariwal 2021) for 80×256 mel segments, conditioned on text.

How a program puts it together (conf is the YAML dict; device a torch.device)::

    from ser.diffusion import (EMA, MelDenoiser, build_conditioner, build_diffusion, condition_text)
    diffusion = build_diffusion(conf["process"])        # {"steps": 4000, "schedule": "cosine", "vlb_weight": 0.001,
                                                        #  "prediction": "eps" | "v" | "x0", "variance_bound": ...}
    denoiser = MelDenoiser(conf["denoiser"]).to(device)  # {"preset": "paper"} or {"channels": 192, ...}
    conditioner = build_conditioner({**conf["conditioner"],           # {"type": "bert", "pretrained": dir}
                                     "proj_dim": denoiser.conf["cond_dim"]}).to(device)
    nets = torch.nn.ModuleDict({"denoiser": denoiser, "conditioner": conditioner})
    opt = torch.optim.AdamW(nets.parameters(), lr=1e-4)
    ema = EMA(nets, decay=0.9999)

    # one training step; x0: (B, 80, 256) in [-1, 1]
    cond = conditioner([condition_text(s, e, spk) for s, e, spk in batch_meta])
    t, w = diffusion.sample_timesteps(x0.shape[0], device)
    with ser.runtime.precision.autocast("bf16", device):            # fp32 | bf16 | fp16 (CUDA)
        losses = diffusion.training_losses(denoiser, x0, t, cond)     # loss/mse/vb, (B,) fp32
    loss = (losses["loss"] * w).mean()
    opt.zero_grad(); loss.backward(); opt.step(); ema.update(nets)
    # checkpoint: {"nets": nets.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict()}

    # strided sampling with the EMA weights (S = 50, 100, 250 or T)
    ema.copy_to(nets)          # on an inference copy, or after saving the training weights
    sampler = build_diffusion(conf["process"], sampling_steps=S)
    with torch.no_grad():
        mel = sampler.p_sample_loop(denoiser, (B, 80, 256), conditioner(texts),
                                    generator=torch.Generator(device).manual_seed(seed), progress=True)
"""
from ser.diffusion.conditioning import (BertConditioner, SentencePieceConditioner, build_conditioner, condition_text,
                                        train_sentencepiece)
from ser.diffusion.denoiser import CPU_PRESET, PAPER_PRESET, MelDenoiser
from ser.diffusion.ema import EMA
from ser.diffusion.gaussian_diffusion import GaussianDiffusion
from ser.diffusion.respace import SpacedDiffusion, build_diffusion, respace_betas, space_timesteps
from ser.diffusion.schedule import cosine_betas, linear_betas, make_betas

__all__ = ["BertConditioner", "CPU_PRESET", "EMA", "GaussianDiffusion", "MelDenoiser", "PAPER_PRESET",
           "SentencePieceConditioner", "SpacedDiffusion", "build_conditioner", "build_diffusion", "condition_text",
           "cosine_betas", "linear_betas", "make_betas", "respace_betas", "space_timesteps", "train_sentencepiece"]
