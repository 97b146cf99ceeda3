"""Shared parts of the tests of the diffusion programs (test_diffusion_training.py,
test_diffusion_generate.py, test_diffusion_options.py, test_diffusion_distributed.py): the tiny
configs, table helpers, argument builders, and the module-scoped fixtures (`corpus`, `trained`,
`generated`) that a test module binds to use them.

The corpus: 4 speakers x 6 utterances of random (T, 80) "mel" matrices in [-1, 1] (some longer
than 256 frames), 3 emotions, 2 sentences; fold 1 = train 03 08, valid 09, test 10. The
diffusion model is tiny (T = 20, 16 channels, 2 + 1 res-layers) and trains a few steps.
"""
import os
import shutil

import kaldiio
import numpy as np
import pytest
import torch

from ser.bin import generate, train_diffusion

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEAKERS = ["03", "08", "09", "10"]
EMOTIONS = ["anger", "neutral", "sadness"]
SENTENCES = ["Der Lappen liegt auf dem Eisschrank.", "Das will sie am Mittwoch abgeben."]
TRAIN_SPK, VALID_SPK, TEST_SPK = ["03", "08"], ["09"], ["10"]
TINY = """\
process: {steps: 20}
denoiser: {channels: 16, num_layers: 2, num_res_blocks: 1, heads: 2, time_dim: 16, cond_dim: 16, norm_groups: 4}
conditioner: {type: sentencepiece, dim: 16, layers: 1, heads: 2, num_tokens: 2}
spm: {vocab_size: 60}
batch_size: 4
optim: {lr: 1.0e-3, warmup_steps: 2}
max_steps: 6
checkpoint_every: 3
log_every: 2
"""
CLASSIFIER = """\
model: cnn_blstm
model_conf: {conv_channels: [8, 8, 8], kernel: 3, lstm_hidden: 8, lstm_layers: 1}
segment: {length: 256, shift: 128}
batch_size: 8
max_epochs: 1
"""



def write_table(path, table):
    with open(path, "w", encoding="utf-8") as f:
        for k in sorted(table):
            f.write(f"{k} {table[k]}\n")


def write_mel_data(data, mats, utt2spk, utt2emo, text):
    """A mel data dir: feats.scp/ark of `mats`, utt2spk, utt2emo, text and conf.yaml."""
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as w:
        for u in sorted(mats):
            w(u, mats[u])
    for name, table in (("utt2spk", utt2spk), ("utt2emo", utt2emo), ("text", text)):
        write_table(data / name, table)
    (data / "conf.yaml").write_text("type: mel\nsample_rate: 22050\nnum_mels: 80\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion")
    rng = np.random.default_rng(0)
    mats, utt2spk, utt2emo, text = {}, {}, {}, {}
    for spk in SPEAKERS:
        for i in range(6):
            utt = f"{spk}-a{i:02d}"
            c = i % 3
            frames = 300 if i == 0 else int(rng.integers(60, 250))       # one 2-segment utterance each
            mats[utt] = np.clip(-0.6 + 0.3 * c + 0.1 * rng.normal(size=(frames, 80)), -1, 1).astype(np.float32)
            utt2spk[utt], utt2emo[utt], text[utt] = spk, EMOTIONS[c], SENTENCES[i % 2]
    data = root / "data"
    data.mkdir()
    write_mel_data(data, mats, utt2spk, utt2emo, text)
    fold = root / "folds" / "1"
    fold.mkdir(parents=True)
    lists = {}
    for name, spks in (("train", TRAIN_SPK), ("valid", VALID_SPK), ("test", TEST_SPK)):
        lists[name] = sorted(u for u in mats if utt2spk[u] in spks)
        (fold / f"{name}.list").write_text("".join(u + "\n" for u in lists[name]))
    (fold / "info.yaml").write_text("test_speakers: ['10']\nvalid_speakers: ['09']\n")
    (root / "folds" / "classes.txt").write_text("".join(e + "\n" for e in EMOTIONS))
    # The diffusion trainer gets a feats dir whose feats.scp has ONLY the training utterances:
    # reading a valid/test matrix would fail, so a successful run proves they are never read.
    train_only = root / "data_train_only"
    train_only.mkdir()
    with open(data / "feats.scp") as f:
        (train_only / "feats.scp").write_text("".join(l for l in f if l.split()[0] in set(lists["train"])))
    for name in ("utt2spk", "utt2emo", "text", "conf.yaml"):
        shutil.copy(data / name, train_only / name)
    (root / "tiny.yaml").write_text(TINY)
    (root / "cls.yaml").write_text(CLASSIFIER)
    return {"root": root, "data": str(data), "train_only": str(train_only), "fold": str(fold),
            "classes": str(root / "folds" / "classes.txt"), "mats": mats, "utt2spk": utt2spk,
            "utt2emo": utt2emo, "text": text, "lists": lists, "config": str(root / "tiny.yaml")}


def train_args(c, outdir, *extra):
    return ["--config", c["config"], "--feats-dir", c["train_only"], "--fold-dir", c["fold"], "--seed", "3",
            "--ngpu", "0", "--outdir", str(outdir), *extra]


@pytest.fixture(scope="module")
def trained(corpus):
    outdir = corpus["root"] / "exp" / "fold.1"
    assert train_diffusion.main(train_args(corpus, outdir)) == 0
    return outdir


def gen_args(model_dir, out, n=2, steps=5, seed=7, *extra):
    return ["--model-dir", str(model_dir), "--num-per-combination", str(n), "--sampling-steps", str(steps),
            "--seed", str(seed), "--out-data", str(out), "--out-feats", str(out) + "_ark", "--ngpu", "0",
            "--batch-size", "8", *extra]


@pytest.fixture(scope="module")
def generated(corpus, trained):
    out = corpus["root"] / "syn"
    assert generate.main(gen_args(trained, out)) == 0
    return out


def read_table(path):
    with open(path, encoding="utf-8") as f:
        return dict((line.rstrip("\n").split(" ", 1) + [""])[:2] for line in f)


def run_killed_and_resumed(corpus, tmp_path, *base):
    """Train to the end in tmp_path/full; in tmp_path/resumed kill at step 2, then resume.
    Returns (full, resumed, the checkpoint at the kill)."""
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    assert train_diffusion.main(train_args(corpus, full, *base)) == 0

    class Killed(Exception):
        pass

    def kill_at_2(step):
        if step == 2:
            raise Killed

    with pytest.raises(Killed):
        train_diffusion.main(train_args(corpus, resumed, *base), on_checkpoint=kill_at_2)
    assert not (resumed / "done").exists()
    at_2 = torch.load(resumed / "checkpoints/last.pt", weights_only=False)
    assert train_diffusion.main(train_args(corpus, resumed, *base)) == 0
    return full, resumed, at_2
