"""The trained-model file `<outdir>/model.pt`: weights plus everything needed to use them.

    {"format": "ser-model-v1", "meta": {...}, "state_dict": {...}}

meta: model_name, model_conf, num_classes, classes (list of str, the class order of the
outputs), feat_dim, segment {length, shift}, cmvn_mean, cmvn_std (lists of float, from the
training utterances), feat_conf (the feature config of the feats dir), train_config (the
resolved training config), and informational keys (best_epoch, valid_uar, config_hash).
Only plain Python types and tensors are stored, so the file loads with weights_only=True.
"""
import os

import torch

from ser.data.atomic import atomic_open
from ser.errors import SerError
from ser.training.precision import prepare_model

FORMAT = "ser-model-v1"
MODEL_FILE = "model.pt"
REQUIRED_META = ("model_name", "model_conf", "num_classes", "classes", "feat_dim", "segment",
                 "cmvn_mean", "cmvn_std", "feat_conf")


def save_model(path, model, meta):
    """Write model weights (moved to CPU) and `meta` to `path` atomically."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise SerError(f"model meta lacks {', '.join(missing)}")
    # contiguous: a channels_last model (ser.training.precision.prepare_model) stores plain tensors
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_open(path, "wb") as f:
        torch.save({"format": FORMAT, "meta": meta, "state_dict": state}, f)


def read_model_file(path, device="cpu"):
    """The raw {"format", "meta", "state_dict"} dict of a model file."""
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # a truncated or foreign file: report it in one line
        raise SerError(f"{path}: not a readable model file ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise SerError(f"{path}: not a {FORMAT} model file")
    return obj


def load_model(model_dir, device="cpu"):
    """(model in eval mode on `device`, meta) from `<model_dir>/model.pt` (or a .pt file path)."""
    from ser.models import build_model  # imported here: the model zoo is only needed to load

    path = model_dir if os.path.isfile(model_dir) else os.path.join(model_dir, MODEL_FILE)
    obj = read_model_file(path, device)
    meta = obj["meta"]
    model = build_model(meta["model_name"], meta["num_classes"], meta["feat_dim"], **meta["model_conf"])
    model.load_state_dict(obj["state_dict"])
    model = prepare_model(model, device).eval()
    return model, meta
