"""End-to-end tests of `python -m ser.bin.train` on a tiny learnable corpus (CPU, small CNN)."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from ser.bin import train as train_prog
from ser.errors import SerError
from ser.training.inference import utterance_posteriors
from ser.training.model_io import load_model

from training_toy import CLASSES, make_aug_dir, make_corpus

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = """\
model: cnn
model_conf: {conv_channels: [4, 8], fc_dim: 16, dropout: 0.1}
segment: {length: 64, shift: 32}
batch_size: 8
optim: {lr: 1.0e-2}
max_epochs: 6
plateau: {patience: 3, factor: 0.5}
early_stop_patience: 10
"""


def local_uar(y_true, y_pred):
    """Reference UAR: mean recall over the classes present in y_true."""
    recalls = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(recalls))


def run(args, **kw):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "ser.bin.train"] + args, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, **kw)


def train_toy(tmp_path, extra, config=CONFIG, **corpus_options):
    """Train on a fresh toy corpus under tmp_path with `config` and the extra arguments; returns
    (corpus, outdir, completed process)."""
    corpus = make_corpus(str(tmp_path), **corpus_options)
    conf = tmp_path / "train.yaml"
    conf.write_text(config)
    outdir = tmp_path / "exp"
    proc = run(["--config", str(conf), "--feats-dir", corpus["data"], "--fold-dir", corpus["fold"],
                "--classes", corpus["classes"], "--seed", "1", "--ngpu", "0", "--num-threads", "1"]
               + extra + ["--outdir", str(outdir)])
    return corpus, outdir, proc


def toy_config_resolver(tmp_path):
    """resolve(*overrides): the resolved config of CONFIG on a toy corpus, with `--set` overrides."""
    corpus = make_corpus(str(tmp_path))
    conf = tmp_path / "train.yaml"
    conf.write_text(CONFIG)

    def resolve(*overrides):
        args = train_prog.get_parser().parse_args(
            ["--config", str(conf), "--feats-dir", corpus["data"], "--fold-dir", corpus["fold"],
             "--classes", corpus["classes"]] + [a for o in overrides for a in ("--set", o)])
        return train_prog.resolve_config(args)
    return resolve


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    corpus = make_corpus(str(root), offset_scale=0.25)
    aug_dir, aug_mats = make_aug_dir(str(root), "aug", corpus, corpus["lists"]["train"])
    conf = root / "train.yaml"
    conf.write_text(CONFIG)
    base = ["--config", str(conf), "--feats-dir", corpus["data"], "--fold-dir", corpus["fold"],
            "--classes", corpus["classes"], "--seed", "1", "--ngpu", "0", "--num-threads", "1"]
    outdir = root / "exp"
    proc = run(base + ["--aug-dirs", aug_dir, "--mixup", "true", "--outdir", str(outdir)])
    return {"root": root, "corpus": corpus, "aug_dir": aug_dir, "aug_mats": aug_mats, "base": base,
            "outdir": outdir, "proc": proc}


def test_train_writes_outputs_and_learns(setup):
    proc, out, corpus = setup["proc"], setup["outdir"], setup["corpus"]
    assert proc.returncode == 0, proc.stderr
    for name in ("config.yaml", "train.log", "history.tsv", "checkpoints/last.pt", "model.pt", "done"):
        assert (out / name).is_file(), name
    # config.yaml: file + CLI overrides + data arguments
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["model"] == "cnn" and cfg["mixup"]["enabled"] is True and cfg["seed"] == 1
    assert cfg["model_conf"]["conv_channels"] == [4, 8] and cfg["optim"]["lr"] == 0.01
    assert cfg["data"]["aug_dirs"] == [setup["aug_dir"]] and cfg["data"]["fold_dir"] == corpus["fold"]
    # history: header + one row per epoch; the log has a line per epoch
    rows = (out / "history.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["epoch", "lr", "train_loss", "valid_loss", "valid_uar", "valid_wa", "time"]
    assert [r.split("\t")[0] for r in rows[1:]] == [str(e) for e in range(1, 7)]
    log = (out / "train.log").read_text()
    assert all(f"epoch {e}/6 lr " in log for e in range(1, 7)) and "augmented copies" in log

    model, meta = load_model(str(out))
    assert meta["classes"] == CLASSES and meta["feat_dim"] == 16 and meta["model_name"] == "cnn"
    assert meta["feat_conf"] == {"type": "toy", "dim": 16}
    assert meta["segment"] == {"length": 64, "shift": 32}
    # cmvn: statistics of the training utterances and their augmented copies only
    frames = np.concatenate([corpus["mats"][u] for u in corpus["lists"]["train"]] + list(setup["aug_mats"].values()))
    np.testing.assert_allclose(meta["cmvn_mean"], frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(meta["cmvn_std"], frames.std(0), rtol=1e-5)
    # the stored valid UAR is reproduced from model.pt, and beats chance (1/3)
    valid = corpus["lists"]["valid"]
    post = utterance_posteriors(model, meta, {u: corpus["mats"][u] for u in valid}, "cpu")
    y_true = np.array([corpus["labels"][u] for u in valid])
    y_pred = np.array([post[u].argmax() for u in valid])
    uar = local_uar(y_true, y_pred)
    assert uar == pytest.approx(meta["valid_uar"], abs=1e-6)
    assert uar > 1 / 3 + 0.1
    uars = [float(r.split("\t")[4]) for r in rows[1:]]
    assert meta["valid_uar"] == pytest.approx(max(uars), abs=1e-5)
    assert meta["best_epoch"] == 1 + int(np.argmax(uars))


def test_rerun_is_already_trained(setup):
    assert setup["proc"].returncode == 0
    before = (setup["outdir"] / "model.pt").stat().st_mtime_ns
    t = time.time()
    proc = run(setup["base"] + ["--aug-dirs", setup["aug_dir"], "--mixup", "true", "--outdir", str(setup["outdir"])])
    assert proc.returncode == 0, proc.stderr
    assert "already trained" in proc.stderr + proc.stdout
    assert time.time() - t < 30
    assert (setup["outdir"] / "model.pt").stat().st_mtime_ns == before


def test_changed_config_is_an_error(setup):
    assert setup["proc"].returncode == 0
    proc = run(setup["base"] + ["--aug-dirs", setup["aug_dir"], "--mixup", "true", "--set", "batch_size=4",
                                "--outdir", str(setup["outdir"])])
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.yaml" in lines[0] and "batch_size" in lines[0] and "train.yaml" in lines[0]


def test_aug_copy_of_test_utterance_is_refused(setup):
    corpus, root = setup["corpus"], setup["root"]
    test_utt = corpus["lists"]["test"][0]
    bad, _ = make_aug_dir(str(root), "aug_bad", corpus, corpus["lists"]["train"][:3] + [test_utt])
    out = root / "exp_bad"
    proc = run(setup["base"] + ["--aug-dirs", bad, "--outdir", str(out)])
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"sp1.1-{test_utt}" in lines[0]
    assert not (out / "done").exists() and not (out / "model.pt").exists()


def test_config_hash_and_overrides(setup, capsys):
    def hash_of(*extra):
        assert train_prog.main(setup["base"] + list(extra) + ["--print-config-hash"]) == 0
        return capsys.readouterr().out.strip()
    h1 = hash_of()
    assert len(h1) == 8
    assert hash_of("--seed", "7") == h1                       # seed is per job
    assert hash_of("--mixup-alpha", "0.4") != h1
    assert hash_of("--model", "cnn_lstm") != h1
    assert train_prog.main(setup["base"] + ["--max-epochs", "3", "--set", "optim.lr=0.5", "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["max_epochs"] == 3 and cfg["optim"]["lr"] == 0.5
    with pytest.raises(SerError, match="'optim.momentum'"):
        train_prog.main(setup["base"] + ["--set", "optim.momentum=0.9", "--print-config"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_ngpu_without_cuda(setup):
    args = setup["base"] + ["--outdir", str(setup["root"] / "exp_gpu")]
    args[args.index("--ngpu") + 1] = "1"
    with pytest.raises(SerError, match="CUDA"):
        train_prog.main(args)


def test_a_resumed_training_refuses_features_of_another_config(tmp_path):
    corpus, outdir, proc = train_toy(tmp_path, ["--max-epochs", "2"])
    assert proc.returncode == 0, proc.stderr
    os.unlink(outdir / "done")   # as if killed after its last checkpoint
    conf = os.path.join(corpus["data"], "conf.yaml")
    with open(conf, "w") as f:
        f.write("type: toy\ndim: 32\n")   # the features recomputed with another config meanwhile
    proc = run(["--config", str(tmp_path / "train.yaml"), "--feats-dir", corpus["data"], "--fold-dir", corpus["fold"],
                "--classes", corpus["classes"], "--seed", "1", "--max-epochs", "2", "--outdir", str(outdir)])
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{conf}: dim is 32, but {outdir / 'model.pt'} was trained on features with 16" in proc.stderr
    assert not (outdir / "done").exists()



def test_a_model_typo_leaves_no_config_that_refuses_the_corrected_run(tmp_path):
    """An unknown model_conf key fails before anything marks the outdir as this config's, so the
    corrected command trains in the same outdir."""
    bad = CONFIG.replace("fc_dim: 16", "fc_dims: 16")
    corpus, outdir, proc = train_toy(tmp_path, ["--set", "max_epochs=1"], config=bad)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "fc_dims" in lines[0], proc.stderr
    assert not (outdir / "config.yaml").exists()
    conf = tmp_path / "train.yaml"
    conf.write_text(CONFIG)
    proc = run(["--config", str(conf), "--feats-dir", corpus["data"], "--fold-dir", corpus["fold"],
                "--classes", corpus["classes"], "--seed", "1", "--ngpu", "0", "--num-threads", "1",
                "--set", "max_epochs=1", "--outdir", str(outdir)])
    assert proc.returncode == 0, proc.stderr
    assert (outdir / "done").exists() and yaml.safe_load((outdir / "config.yaml").read_text())["model_conf"]["fc_dim"] == 16
