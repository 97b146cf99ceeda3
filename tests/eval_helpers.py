"""Helpers shared by the evaluation tests: a tiny saved model and a small feats dir."""
import os

import numpy as np
import torch
import yaml

CLASSES = ["anger", "boredom", "neutral"]


def make_model_dir(outdir, feat_dim=16, classes=CLASSES, feat_conf=None, cmvn=None, seed=0,
                   segment=(32, 16)):
    """Save a tiny randomly initialised CNN as <outdir>/model.pt (ser.training.model_io format)."""
    from ser.models import build_model
    from ser.training.model_io import save_model

    torch.manual_seed(seed)
    conf = {"conv_channels": [4], "fc_dim": 8, "dropout": 0.0}
    model = build_model("cnn", len(classes), feat_dim, **conf)
    # Larger output weights than the default init so that predictions differ between inputs.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    mean, std = cmvn if cmvn is not None else (np.zeros(feat_dim), np.ones(feat_dim))
    meta = {"model_name": "cnn", "model_conf": conf, "num_classes": len(classes), "classes": list(classes),
            "feat_dim": feat_dim, "segment": {"length": segment[0], "shift": segment[1]},
            "cmvn_mean": [float(x) for x in mean], "cmvn_std": [float(x) for x in std],
            "feat_conf": feat_conf or {"type": "spec"}, "train_config": {}}
    os.makedirs(outdir, exist_ok=True)
    save_model(os.path.join(outdir, "model.pt"), model, meta)
    with open(os.path.join(outdir, "done"), "w"):  # a finished training (scoring refuses others)
        pass
    return model, meta


def write_feats_dir(d, feats, utt2emo, utt2spk=None):
    """A data dir with feats.scp/ark (kaldiio), utt2emo and optionally utt2spk."""
    import kaldiio

    os.makedirs(d, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for u in sorted(feats):
            w[u] = feats[u].astype(np.float32)
    for name, table in (("utt2emo", utt2emo), ("utt2spk", utt2spk)):
        if table is not None:
            with open(os.path.join(d, name), "w") as f:
                f.writelines(f"{k} {table[k]}\n" for k in sorted(table))


def write_training_run(run_dir, config, valid_uars, epoch_times):
    """A training run's config.yaml and history.tsv (one row per epoch: its validation UAR and time)."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    with open(os.path.join(run_dir, "history.tsv"), "w") as f:
        f.write("epoch\tlr\ttrain_loss\tvalid_loss\tvalid_uar\tvalid_wa\ttime\n")
        for e, (v, t) in enumerate(zip(valid_uars, epoch_times), 1):
            f.write(f"{e}\t0.001\t1\t1\t{v}\t{v}\t{t}\n")
