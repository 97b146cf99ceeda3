"""The trained diffusion model of a fold: `<model_dir>/model.pt` (EMA weights + meta).

meta holds everything needed to rebuild the networks without the training config:
`denoiser` (the MelDenoiser options, resolved), `conditioner` (build_conditioner options; a
sentencepiece model is named relative to the model dir, a frozen BERT by its `pretrained`
path/hub id, from which it is reloaded), `process` (T, schedule, vlb_weight), `segment`,
`n_mels`, `feat_conf` (the mel feature config), `precision`, `step` and the resolved training
`config`.
"""
import os

import torch

from ser.data.atomic import atomic_open
from ser.diffusion.conditioning import build_conditioner
from ser.diffusion.denoiser import MelDenoiser
from ser.errors import SerError

MODEL_FILE = "model.pt"


def build_nets(denoiser_conf, conditioner_conf):
    """ModuleDict(denoiser, conditioner); the conditioner's proj_dim is the denoiser's cond_dim."""
    denoiser = MelDenoiser(denoiser_conf)
    conditioner = build_conditioner({**conditioner_conf, "proj_dim": denoiser.conf["cond_dim"]})
    return torch.nn.ModuleDict({"denoiser": denoiser, "conditioner": conditioner})


def save_diffusion_model(path, nets_state, meta):
    """Write {"meta", "nets"} atomically (nets_state: a state_dict, e.g. of the EMA weights)."""
    with atomic_open(path, "wb") as f:
        torch.save({"meta": meta, "nets": nets_state}, f)


def load_diffusion_model(model_dir, device="cpu"):
    """(nets in eval mode on `device`, meta) from `<model_dir>/model.pt`."""
    path = os.path.join(model_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise SerError(f"{path}: no such file (train the diffusion model first)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        meta, state = blob["meta"], blob["nets"]
    except Exception as e:
        raise SerError(f"{path}: cannot read model ({type(e).__name__}: {e})") from None
    cond = dict(meta["conditioner"])
    if cond["type"] == "sentencepiece":
        cond["spm_model"] = os.path.join(model_dir, cond["spm_model"])
    nets = build_nets(meta["denoiser"], cond)
    nets.load_state_dict(state)
    return nets.to(device).eval(), meta
