"""Training the diffusion model with ser.bin.train_diffusion on the tiny mel corpus of
diffusion_helpers.py: config validation (unknown keys, types, the shipped configs), the training
segments (train list only, a test speaker refused), the outputs of a run (history, EMA model.pt,
checkpoint), an already-trained rerun, a changed config, resume after a kill equal to an
uninterrupted run, and the BERT conditioner path (train + generate with a tiny local BERT).
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from ser.bin import generate, train_diffusion
from ser.diffusion import config as DC
from ser.diffusion.data import load_training_segments
from ser.errors import SerError

import diffusion_helpers
from diffusion_helpers import (EMOTIONS, REPO, SENTENCES, SPEAKERS, TINY, TRAIN_SPK, gen_args, read_table,
                               run_killed_and_resumed, train_args)

# The shared module-scoped fixtures, bound here so that pytest finds them.
corpus, trained = diffusion_helpers.corpus, diffusion_helpers.trained
pytestmark = pytest.mark.usefixtures("one_thread")


# --- config -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, key", [
    ("max_step: 3\n", "'max_step'"),
    ("optim: {lrr: 1.0}\n", "'optim.lrr'"),
    ("denoiser: {chanels: 16}\n", "'denoiser.chanels'"),
    ("conditioner: {type: bert, pretrained: x, dim: 4}\n", "'conditioner.dim'"),
    ("conditioner: {spm_model: a.model}\n", "'conditioner.spm_model'"),
    ("data: {feats_dir: x}\n", "'data'"),
])
def test_config_unknown_key_names_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SerError) as e:
        DC.load_config(str(path))
    assert str(path) in str(e.value) and key in str(e.value)


def test_config_types_and_shipped_configs(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("batch_size: many\n")
    with pytest.raises(SerError, match="'batch_size' must be an integer"):
        DC.load_config(str(path))
    path.write_text("precision: fp8\n")
    with pytest.raises(SerError, match="'precision' must be one of"):
        DC.load_config(str(path))
    cpu = DC.load_config(os.path.join(REPO, "egs/emodb/conf/diffusion.yaml"))
    assert cpu["conditioner"]["type"] == "sentencepiece" and cpu["segment"]["pad_value"] == -1.0
    paper = DC.load_config(os.path.join(REPO, "egs/TEMPLATE/conf/tuning/diffusion.yaml"))
    assert paper["process"]["steps"] == 4000 and paper["batch_size"] == 64 and paper["max_steps"] == 120000
    assert paper["denoiser"]["preset"] == "paper" and paper["conditioner"]["type"] == "bert"
    assert paper["conditioner"]["pretrained"]
    from ser.diffusion.denoiser import PAPER_PRESET
    assert PAPER_PRESET["channels"] == 1536


# --- data ---------------------------------------------------------------------------------------
def test_training_segments_are_train_list_only(corpus):
    data = load_training_segments(corpus["train_only"], corpus["fold"], length=256, shift=128)
    train = corpus["lists"]["train"]
    assert data.utts == train and set(data.segment_utts) == set(train)
    # count: the 300-frame utterances give 2 segments, the others 1
    assert len(data.segments) == sum(2 if corpus["mats"][u].shape[0] > 256 else 1 for u in train)
    assert data.segments.shape[1:] == (80, 256)
    k = data.segment_utts.index(train[1])
    ref = np.full((256, 80), -1.0, np.float32)
    ref[:corpus["mats"][train[1]].shape[0]] = corpus["mats"][train[1]]
    np.testing.assert_array_equal(data.segments[k], ref.T)
    u = train[1]
    expected = f"{corpus['text'][u]} | emotion: {corpus['utt2emo'][u]} | speaker: {corpus['utt2spk'][u]}"
    assert data.conditions[k] == expected
    assert {s for s, _, _ in data.combinations()} == set(TRAIN_SPK)


def test_training_refuses_a_test_speaker_in_train_list(corpus, tmp_path):
    bad = tmp_path / "fold"
    shutil.copytree(corpus["fold"], bad)
    test_utt = corpus["lists"]["test"][0]
    (bad / "test.list").write_text("".join(u + "\n" for u in corpus["lists"]["test"][1:]))
    (bad / "train.list").write_text("".join(u + "\n" for u in sorted(corpus["lists"]["train"] + [test_utt])))
    args = train_args(corpus, tmp_path / "exp", "--num-threads", "1")
    args[args.index("--fold-dir") + 1] = str(bad)
    args[args.index("--feats-dir") + 1] = corpus["data"]
    with pytest.raises(SerError, match=f"training utterance '{test_utt}' is from speaker '10'"):
        train_diffusion.main(args)
    assert not (tmp_path / "exp" / "model.pt").exists()


# --- training -----------------------------------------------------------------------------------
def test_train_outputs(corpus, trained):
    for name in ("config.yaml", "train.log", "history.tsv", "checkpoints/last.pt", "model.pt", "spm.model",
                 "combinations.tsv", "train_utts.list", "feat_conf.yaml", "done"):
        assert (trained / name).is_file(), name
    cfg = yaml.safe_load((trained / "config.yaml").read_text())
    assert cfg["seed"] == 3 and cfg["data"]["fold_dir"] == corpus["fold"] and cfg["max_steps"] == 6
    assert cfg["denoiser"]["channels"] == 16 and cfg["segment"]["pad_value"] == -1.0
    assert (trained / "train_utts.list").read_text().split() == corpus["lists"]["train"]
    rows = (trained / "history.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["step", "lr", "loss", "mse", "vb", "steps_per_s"]
    assert [r.split("\t")[0] for r in rows[1:]] == ["2", "4", "6"]
    assert all(np.isfinite(float(r.split("\t")[2])) for r in rows[1:])
    blob = torch.load(trained / "model.pt", weights_only=False)
    assert blob["meta"]["step"] == 6 and blob["meta"]["conditioner"]["spm_model"] == "spm.model"
    # model.pt holds the EMA weights, which differ from the raw weights of the last checkpoint
    ckpt = torch.load(trained / "checkpoints/last.pt", weights_only=False)
    for name, shadow in ckpt["ema"]["shadow"].items():
        assert torch.equal(blob["nets"][name], shadow)
    assert any(not torch.equal(blob["nets"][n], ckpt["nets"][n]) for n in ckpt["ema"]["shadow"])


def test_rerun_is_already_trained(corpus, trained, capsys):
    before = (trained / "model.pt").stat().st_mtime_ns
    assert train_diffusion.main(train_args(corpus, trained)) == 0
    assert "already trained" in capsys.readouterr().err
    assert (trained / "model.pt").stat().st_mtime_ns == before


def test_changed_config_is_a_one_line_error(corpus, trained):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "ser.bin.train_diffusion"]
                          + train_args(corpus, trained, "--set", "batch_size=2"),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.yaml" in lines[0] and "batch_size" in lines[0]


def test_resume_equals_uninterrupted_run(corpus, tmp_path):
    base = ["--set", "max_steps=4", "--set", "checkpoint_every=2", "--num-threads", "1"]
    full, resumed, at_2 = run_killed_and_resumed(corpus, tmp_path, *base)
    assert at_2["step"] == 2
    assert "resumed from" in (resumed / "train.log").read_text()
    a = torch.load(full / "checkpoints/last.pt", weights_only=False)
    b = torch.load(resumed / "checkpoints/last.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for key in ("nets",):
        assert a[key].keys() == b[key].keys()
        for n in a[key]:
            assert torch.equal(a[key][n], b[key][n]), n
    for n in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][n], b["ema"]["shadow"][n]), n
    ma = torch.load(full / "model.pt", weights_only=False)["nets"]
    mb = torch.load(resumed / "model.pt", weights_only=False)["nets"]
    assert all(torch.equal(ma[n], mb[n]) for n in ma)
    # steps 3-4 changed the weights (the comparison is not vacuous)
    assert any(not torch.equal(a["nets"][n], at_2["nets"][n]) for n in a["nets"])
    assert (full / "history.tsv").read_text().split("\n")[1].split("\t")[:5] == \
        (resumed / "history.tsv").read_text().split("\n")[1].split("\t")[:5]


def test_bert_conditioner_path(corpus, tmp_path):
    """train (2 steps) + generate with a tiny random BERT saved locally (nothing downloads); the
    frozen BERT is not in model.pt and is reloaded from `pretrained` by generate."""
    from transformers import BertConfig, BertModel, BertTokenizerFast
    bert = tmp_path / "bert"
    bert.mkdir()
    words = sorted({w for s in SENTENCES + EMOTIONS + SPEAKERS + ["emotion", "speaker", "|", ":", "."]
                    for w in s.lower().replace(".", " . ").split()})
    (bert / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
    BertTokenizerFast(vocab=str(bert / "vocab.txt")).save_pretrained(str(bert))
    BertModel(BertConfig(vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(str(bert))
    conf = tmp_path / "bert.yaml"
    conf.write_text(TINY.replace("conditioner: {type: sentencepiece, dim: 16, layers: 1, heads: 2, num_tokens: 2}",
                                 f"conditioner: {{type: bert, pretrained: '{bert}', num_tokens: 2, heads: 2}}"))
    out = tmp_path / "exp"
    args = train_args(corpus, out, "--set", "max_steps=2")
    args[args.index("--config") + 1] = str(conf)
    assert train_diffusion.main(args) == 0
    assert not (out / "spm.model").exists()
    state = torch.load(out / "model.pt", weights_only=False)
    assert state["meta"]["conditioner"]["pretrained"] == str(bert)
    assert not any(k.startswith("conditioner.bert.") for k in state["nets"])
    syn = tmp_path / "syn"
    assert generate.main(gen_args(out, syn, 1, 2, 1, "--max-combinations", "2")) == 0
    assert len(read_table(syn / "utt2spk")) == 2


def test_a_resumed_run_refuses_features_of_another_config(corpus, tmp_path):
    outdir = tmp_path / "resumed"

    class Killed(Exception):
        pass

    def kill_at_2(step):
        if step == 2:
            raise Killed

    base = ["--set", "max_steps=4", "--set", "checkpoint_every=2", "--num-threads", "1"]
    with pytest.raises(Killed):
        train_diffusion.main(train_args(corpus, outdir, *base), on_checkpoint=kill_at_2)
    # the run started on 80 mel bands; its features are (as if) recomputed with 64 since
    (outdir / "feat_conf.yaml").write_text("type: mel\nsample_rate: 22050\nnum_mels: 64\n")
    conf = os.path.join(corpus["train_only"], "conf.yaml")
    with pytest.raises(SerError, match=rf"^{conf}: num_mels is 80, but {outdir} was trained on features with 64"):
        train_diffusion.main(train_args(corpus, outdir, *base))
    assert not (outdir / "done").exists()
    assert "num_mels: 64" in (outdir / "feat_conf.yaml").read_text()   # the record is kept
