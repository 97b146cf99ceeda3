"""The trained-model file `<outdir>/model.pt`: weights plus everything needed to use them.

    {"format": "ser-model-v1", "meta": {...}, "state_dict": {...}}

meta: model_name, model_conf, num_classes, classes (list of str, the class order of the
outputs), feat_dim, segment {length, shift}, cmvn_mean, cmvn_std (lists of float, from the
training utterances), utterance_mvn ({means, vars}, applied before them; absent in models of
before the option: off), feat_conf (the feature config of the feats dir), train_config (the
resolved training config), and informational keys (best_epoch, valid_uar, config_hash; with
`average_best`, averaged_epochs: valid_uar is then that of the mean of their weights).
Only plain Python types and tensors are stored, so the file loads with weights_only=True. The file
is written and read with ser.runtime.torch_files.
"""
import os

from ser.errors import SerError
from ser.runtime.precision import prepare_model
from ser.runtime.torch_files import MODEL_FILE, cpu_state_dict, load_torch_file, save_torch_file

FORMAT = "ser-model-v1"
REQUIRED_META = ("model_name", "model_conf", "num_classes", "classes", "feat_dim", "segment",
                 "cmvn_mean", "cmvn_std", "feat_conf")


def save_model(path, model, meta):
    """Write model weights (moved to CPU) and `meta` to `path` atomically."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise SerError(f"model meta lacks {', '.join(missing)}")
    save_torch_file(path, {"format": FORMAT, "meta": meta, "state_dict": cpu_state_dict(model)})


def read_model_file(path, device="cpu"):
    """The raw {"format", "meta", "state_dict"} dict of a model file."""
    obj = load_torch_file(path, "{path}: not a readable model file ({error})", map_location=device,
                          passthrough=(FileNotFoundError,))
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
