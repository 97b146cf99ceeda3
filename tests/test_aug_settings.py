"""The augmentation registry (ser.augment.settings), its shell program and ser.bin.train's record of it."""
import subprocess
import sys

import pytest
import yaml

from ser.augment import settings as S
from ser.bin.train import get_parser, resolve_config
from ser.errors import SerError

SP = "--aug-policy select --aug-dirs data/all_sp0.9_mel --aug-dirs data/all_sp1.1_mel"
SYN = "exp/d/fold.3/syn"


def program(*args):
    return subprocess.run([sys.executable, "-m", "ser.bin.aug_setting", *args], capture_output=True, text=True)


@pytest.mark.parametrize("aug, expected", [
    ("none", "--mixup false"),
    ("mixup", "--mixup true"),
    ("sp", f"--mixup false {SP}"),
    ("sp+mixup", f"--mixup true {SP}"),
    ("syn", f"--mixup false --train-source synthetic --synthetic-dirs {SYN}"),
    ("real+syn", f"--mixup false --train-source both --synthetic-dirs {SYN}"),
    ("real+syn+mixup", f"--mixup true --train-source both --synthetic-dirs {SYN}"),
])
def test_train_options_of_every_setting(aug, expected, tmp_path):
    r = program("train-options", aug, "--data", "data/all", "--feat", "mel", "--syn-dir", SYN)
    assert r.returncode == 0 and r.stdout.strip() == f"--augmentation {aug} {expected}", r.stderr
    # ser.bin.train accepts them and records the setting by name
    conf = tmp_path / "c.yaml"
    conf.write_text("model: cnn\n")
    args = get_parser().parse_args(["--config", str(conf), "--feats-dir", "f", "--fold-dir", "d",
                                    "--classes", "c", "--outdir", "o", *r.stdout.split()])
    cfg = resolve_config(args)
    assert cfg["augmentation"] == aug and cfg["mixup"]["enabled"] == ("mixup" in aug)
    assert cfg["data"]["aug_dirs"] == (["data/all_sp0.9_mel", "data/all_sp1.1_mel"] if "sp" in aug else [])


def test_unknown_setting_is_one_line_error_naming_it():
    for args in (("table", "--data", "d", "--feat", "f", "none", "sp_mixup"),
                 ("train-options", "sp_mixup", "--data", "d", "--feat", "f"), ("uses-synthetic", "none", "sp_mixup")):
        r = program(*args)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.strip().splitlines() == [
            "aug_setting.py: error: unknown augmentation 'sp_mixup' "
            "(none sp mixup sp+mixup syn real+syn real+syn+mixup)"]


def test_table_speed_dirs_and_synthetic():
    # the table a recipe reads once: name, dir-name key, synthetic?, speed-perturbed copies, options
    r = program("table", "--data", "data/all", "--feat", "mel", "none", "sp+mixup", "real+syn+mixup")
    assert r.returncode == 0 and r.stdout.splitlines() == [
        "none none false - --augmentation none --mixup false",
        f"sp+mixup sp_mixup false data/all_sp0.9,data/all_sp1.1 --augmentation sp+mixup --mixup true {SP}",
        "real+syn+mixup real_syn_mixup true - --augmentation real+syn+mixup --mixup true --train-source both "
        "--synthetic-dirs @SYN_DIR@"]
    assert program("speed-dirs", "--data", "data/all", "none", "sp", "sp+mixup").stdout == \
        "data/all_sp0.9\ndata/all_sp1.1\n"
    assert program("speed-dirs", "--data", "data/all", "none", "mixup").stdout == ""
    assert program("uses-synthetic", "none", "sp").stdout == "false\n"
    assert program("uses-synthetic", "none", "real+syn").stdout == "true\n"
    with pytest.raises(SerError, match="needs the synthetic data dir"):
        S.get("syn").train_options("data/all", "mel")


def test_name_must_agree_with_the_options(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("model: cnn\n")
    base = ["--config", str(conf), "--feats-dir", "f", "--fold-dir", "d", "--classes", "c", "--outdir", "o"]
    with pytest.raises(SerError, match="--augmentation sp: the options say mixup False, augmented copies False"):
        resolve_config(get_parser().parse_args(base + ["--augmentation", "sp", "--mixup", "false"]))
    # without a name: the setting the options make; copies of another kind are custom
    assert resolve_config(get_parser().parse_args(base + ["--mixup", "true"]))["augmentation"] == "mixup"
    assert resolve_config(get_parser().parse_args(base))["augmentation"] == "none"
    custom = resolve_config(get_parser().parse_args(base + ["--aug-dirs", "d/all_noisy"]))
    assert custom["augmentation"] == S.CUSTOM
    assert S.describe_config(custom) == (S.CUSTOM, "copies from all_noisy")
    # the name is not part of the experiment's hash (its options are)
    from ser.training.config import config_hash
    named = resolve_config(get_parser().parse_args(base + ["--augmentation", "none"]))
    assert config_hash(named) == config_hash(dict(named, augmentation="other"))
    # and a config file cannot set it
    conf.write_text("model: cnn\naugmentation: sp\n")
    with pytest.raises(SerError, match="augmentation"):
        resolve_config(get_parser().parse_args(base))


def test_labels_order_and_descriptions():
    assert [S.label(k) for k in ("none", "sp_mixup", "syn", "real_syn")] == [
        "no augmentation", "speed perturbation + mixup", "synthetic only", "real + synthetic"]
    keys = ["custom", "real_syn_mixup", "sp", "none", "syn", "mixup", "sp_mixup", "real_syn"]
    assert sorted(keys, key=S.order) == ["none", "sp", "mixup", "sp_mixup", "syn", "real_syn", "real_syn_mixup",
                                         "custom"]
    cfg = yaml.safe_load("augmentation: sp+mixup\nmixup: {enabled: true, alpha: 0.2}\ndata: {}\n")
    assert S.describe_config(cfg) == ("sp+mixup", "speed perturbation ×0.9, ×1.1 + mixup α=0.2")
    assert S.describe_config({"augmentation": "syn", "mixup": {"enabled": False}}) == ("syn", "synthetic only")
    assert S.describe_config({"augmentation": "none"}) == ("none", "none")


def test_config_enabling_mixup_against_the_recipes_setting_is_refused(tmp_path):
    # run.sh's --augs decides mixup (--mixup false for `none`); a config enabling it would otherwise be
    # overridden unseen and share the hash (and outputs) of the config without it
    conf = tmp_path / "c.yaml"
    conf.write_text("model: cnn\nmixup:\n  enabled: true\n")
    base = ["--config", str(conf), "--feats-dir", "f", "--fold-dir", "d", "--classes", "c", "--outdir", "o"]
    with pytest.raises(SerError, match=rf"^{conf}: mixup.enabled is true, but the augmentation setting 'none' "
                                       r"has none: .*run.sh --augs mixup or sp\+mixup"):
        resolve_config(get_parser().parse_args(base + ["--augmentation", "none", "--mixup", "false"]))
    # enabled by --set, the error names that option instead of the config file
    off = tmp_path / "off.yaml"
    off.write_text("model: cnn\nmixup:\n  enabled: false\n")
    with pytest.raises(SerError, match=r"^--set mixup\.enabled=true: mixup.enabled is true, but the augmentation"):
        resolve_config(get_parser().parse_args(base[2:] + ["--config", str(off), "--set", "mixup.enabled=true",
                                                           "--augmentation", "none", "--mixup", "false"]))
    # the setting that has mixup agrees; without a setting, the options decide as before
    assert resolve_config(get_parser().parse_args(base + ["--augmentation", "mixup", "--mixup", "true"]))["mixup"]["enabled"]
    assert resolve_config(get_parser().parse_args(base + ["--mixup", "false"]))["augmentation"] == "none"
    r = subprocess.run([sys.executable, "-m", "ser.bin.train", *base, "--augmentation", "none", "--mixup", "false",
                        "--print-config-hash"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "mixup.enabled is true" in r.stderr
