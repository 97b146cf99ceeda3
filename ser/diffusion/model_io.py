"""The trained diffusion model of a fold: `<model_dir>/model.pt` (EMA weights + meta).

meta holds everything needed to rebuild the networks without the training config:
`denoiser` (the MelDenoiser options, resolved), `conditioner` (build_conditioner options; a
sentencepiece model is named relative to the model dir, a frozen BERT by its `pretrained`
path/hub id, from which it is reloaded), `process` (T, schedule, vlb_weight), `segment`,
`n_mels`, `feat_conf` (the mel feature config), `precision`, `step` and the resolved training
`config`. A model trained with `guidance.snapshot_step` also holds `guide`, the EMA weights of
that step (ser.diffusion.guidance), loaded as nets["guide"]. The file is written and read with
ser.runtime.torch_files.
"""
import os

import torch

from ser.diffusion.conditioning import build_conditioner
from ser.diffusion.denoiser import MelDenoiser
from ser.errors import SerError
from ser.runtime.torch_files import MODEL_FILE, load_torch_file, save_torch_file


def build_nets(denoiser_conf, conditioner_conf):
    """ModuleDict(denoiser, conditioner); the conditioner's proj_dim is the denoiser's cond_dim."""
    denoiser = MelDenoiser(denoiser_conf)
    conditioner = build_conditioner({**conditioner_conf, "proj_dim": denoiser.conf["cond_dim"]})
    return torch.nn.ModuleDict({"denoiser": denoiser, "conditioner": conditioner})


def save_diffusion_model(path, nets_state, meta, guide_state=None):
    """Write {"meta", "nets"[, "guide"]} atomically (nets_state: a state_dict, e.g. of the EMA
    weights; guide_state: the guide snapshot's, or None)."""
    blob = {"meta": meta, "nets": nets_state}
    if guide_state is not None:
        blob["guide"] = guide_state
    save_torch_file(path, blob)


def load_diffusion_model(model_dir, device="cpu"):
    """(nets in eval mode on `device`, meta) from `<model_dir>/model.pt`."""
    path = os.path.join(model_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise SerError(f"{path}: no such file (train the diffusion model first)")
    blob = load_torch_file(path, "{path}: cannot read model ({error})", weights_only=False, keys=("meta", "nets"))
    meta, state = blob["meta"], blob["nets"]
    cond = dict(meta["conditioner"])
    if cond["type"] == "sentencepiece":
        cond["spm_model"] = os.path.join(model_dir, cond["spm_model"])
    nets = build_nets(meta["denoiser"], cond)
    nets.load_state_dict(state)
    if blob.get("guide") is not None:
        guide = build_nets(meta["denoiser"], cond)
        guide.load_state_dict(blob["guide"])
        nets["guide"] = guide
    return nets.to(device).eval(), meta
