"""The configs the recipes ship: every one loads and builds its model, and every variant differs
from the config its header names by exactly the settings it says it changes."""
import os
import pathlib

import pytest

from ser.diffusion import config as DC
from ser.eval.config_diff import config_differences
from ser.models import build_model
from ser.training import config as TC

EGS = pathlib.Path(__file__).resolve().parent.parent / "egs"
FEAT_DIM = {"cnn_blstm": 80, "mlp": 6373}  # mel bands, ComParE functionals; the paper-1 models read 128-bin spectrograms


def shipped(pattern):
    """Each distinct shipped config file matching `pattern` below egs/ (links resolved once)."""
    seen = {}
    for p in sorted(EGS.rglob(pattern)):
        if "conf" in p.relative_to(EGS).parts:
            seen.setdefault(os.path.realpath(p), p)
    return sorted(seen.values())


TRAIN_CONFIGS = shipped("train_*.yaml")
DIFFUSION_CONFIGS = shipped("diffusion.yaml")


def test_the_shipped_configs_are_found():
    names = {str(p.relative_to(EGS)) for p in TRAIN_CONFIGS}
    assert {"TEMPLATE/conf/train_densenet_lstm_highway.yaml", "TEMPLATE/conf/tuning/train_cnn_blstm.yaml",
            "TEMPLATE/conf/paper_bf16/train_cnn.yaml"} <= names
    assert len(TRAIN_CONFIGS) >= 20 and len(DIFFUSION_CONFIGS) >= 3


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: str(p.relative_to(EGS)))
def test_training_config_loads_and_builds_its_model(path):
    cfg = TC.load_config(str(path))
    assert f"train_{cfg['model']}.yaml" == path.name
    model = build_model(cfg["model"], 7, FEAT_DIM.get(cfg["model"], 128), **cfg["model_conf"])
    assert sum(p.numel() for p in model.parameters()) > 1000


@pytest.mark.parametrize("path", DIFFUSION_CONFIGS, ids=lambda p: str(p.relative_to(EGS)))
def test_diffusion_config_loads(path):
    cfg = DC.load_config(str(path))
    assert cfg["process"]["steps"] == 4000 and cfg["max_steps"] > 0


# (variant, the config its header says it is based on, {setting: (base value, variant value)})
VARIANTS = [
    *[(f"TEMPLATE/conf/paper_bf16/train_{m}.yaml", f"TEMPLATE/conf/tuning/train_{m}.yaml",
       {"precision": ("fp32", "bf16")})
      for m in ("cnn", "cnn_lstm", "densenet", "densenet_lstm", "densenet_lstm_highway")],
    ("TEMPLATE/conf/pat10/train_densenet_lstm_highway.yaml", "TEMPLATE/conf/train_densenet_lstm_highway.yaml",
     {"model_conf.lstm_pool": ("mean", "last")}),
    ("TEMPLATE/conf/paper_bf16_pat10/train_densenet_lstm_highway.yaml",
     "TEMPLATE/conf/paper_bf16/train_densenet_lstm_highway.yaml", {"plateau.patience": (5, 10)}),
    ("TEMPLATE/conf/paper_bf16_pat10_mean/train_densenet_lstm_highway.yaml",
     "TEMPLATE/conf/paper_bf16_pat10/train_densenet_lstm_highway.yaml", {"model_conf.lstm_pool": ("last", "mean")}),
    *[(f"TEMPLATE/conf/paper_bf16_pat10_mean/train_{m}.yaml", f"TEMPLATE/conf/paper_bf16/train_{m}.yaml",
       {"model_conf.lstm_pool": ("last", "mean"), "plateau.patience": (5, 10)})
      for m in ("cnn_lstm", "densenet_lstm")],
    ("TEMPLATE/conf/paper_bf16_pat10_mean_avg5/train_densenet_lstm_highway.yaml",
     "TEMPLATE/conf/paper_bf16_pat10_mean/train_densenet_lstm_highway.yaml", {"average_best": (1, 5)}),
    ("TEMPLATE/conf/paper_bf16_uttmvn/train_densenet.yaml", "TEMPLATE/conf/paper_bf16/train_densenet.yaml",
     {"utterance_mvn.means": (False, True)}),
    ("TEMPLATE/conf/paper_bf16_balanced/train_densenet.yaml", "TEMPLATE/conf/paper_bf16/train_densenet.yaml",
     {"class_weights": ("none", "balanced")}),
    ("TEMPLATE/conf/paper_bf16_deltas/train_densenet.yaml", "TEMPLATE/conf/paper_bf16/train_densenet.yaml",
     {"model_conf.deltas": (0, 2)}),
    ("TEMPLATE/conf/paper_bf16_reg/train_densenet.yaml", "TEMPLATE/conf/paper_bf16/train_densenet.yaml",
     {"spec_augment.enabled": (False, True), "label_smoothing": (0.0, 0.1), "optim.weight_decay": (0.0, 1e-4)}),
    ("TEMPLATE/conf/paper_bf16_pat10_mean_deltas/train_densenet_lstm_highway.yaml",
     "TEMPLATE/conf/paper_bf16_pat10_mean/train_densenet_lstm_highway.yaml", {"model_conf.deltas": (0, 2)}),
    ("TEMPLATE/conf/reg/train_densenet.yaml", "TEMPLATE/conf/train_densenet.yaml",
     {"spec_augment.enabled": (False, True), "label_smoothing": (0.0, 0.1), "optim.weight_decay": (0.0, 1e-4)}),
    ("emodb/conf/paper_bf16_init_ravdess/train_densenet.yaml", "TEMPLATE/conf/paper_bf16/train_densenet.yaml",
     {"init.model": ("", "../ravdess/exp/all/mel_densenet_none_98763965/fold.1/seed1/model.pt"),
      "init.exclude": ([], ["classifier"])}),
    ("emodb/conf/paper_bf16_pat10_mean_init_ravdess/train_densenet_lstm_highway.yaml",
     "TEMPLATE/conf/paper_bf16_pat10_mean/train_densenet_lstm_highway.yaml",
     {"init.model": ("", "../ravdess/exp/all/mel_densenet_lstm_highway_none_0b583b9d/fold.1/seed1/model.pt"),
      "init.exclude": ([], ["classifier"])}),
    ("ravdess/conf/train_mlp.yaml", "TEMPLATE/conf/train_mlp.yaml", {"model_conf.num_layers": (3, 2)}),
    ("emodb/conf/steps8000_bf16/train_cnn_blstm.yaml", "TEMPLATE/conf/train_cnn_blstm.yaml",
     {"precision": ("fp32", "bf16")}),
    ("emodb/conf/steps8000/diffusion.yaml", "emodb/conf/diffusion.yaml", {"max_steps": (3000, 8000)}),
]


@pytest.mark.parametrize("variant,base,changes", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_variant_differs_from_its_base_as_its_header_says(variant, base, changes):
    load = DC.load_config if variant.endswith("diffusion.yaml") else TC.load_config
    header = "".join(line for line in (EGS / variant).read_text().splitlines(keepends=True)
                     if line.startswith("#"))
    assert pathlib.PurePath(base).name in header   # the header names the config it starts from
    diffs = config_differences([load(str(EGS / base)), load(str(EGS / variant))])
    assert diffs == {k: list(v) for k, v in changes.items()}
