"""Programs of issue 5 on a tiny mel corpus: ser.bin.train_diffusion, ser.bin.generate,
ser.bin.diffusion_report, and the classifier trainer on synthetic data (ser.bin.train).

The corpus: 4 speakers x 6 utterances of random (T, 80) "mel" matrices in [-1, 1] (some longer
than 256 frames), 3 emotions, 2 sentences; fold 1 = train 03 08, valid 09, test 10. The
diffusion model is tiny (T = 20, 16 channels, 2 + 1 res-layers) and trains a few steps.
"""
import os
import shutil
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from ser.bin import diffusion_report, generate, train, train_diffusion
from ser.diffusion import config as DC
from ser.diffusion.data import load_training_segments, pad_segments
from ser.diffusion.quality import griffin_lim, mad_table
from ser.errors import SerError
from ser.training.dataset import load_fold, resolve_train_source
from ser.training.model_io import load_model

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


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_table(path, table):
    with open(path, "w", encoding="utf-8") as f:
        for k in sorted(table):
            f.write(f"{k} {table[k]}\n")


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
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as w:
        for u in sorted(mats):
            w(u, mats[u])
    for name, table in (("utt2spk", utt2spk), ("utt2emo", utt2emo), ("text", text)):
        write_table(data / name, table)
    (data / "conf.yaml").write_text("type: mel\nsample_rate: 22050\nnum_mels: 80\n")
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
    paper = DC.load_config(os.path.join(REPO, "egs/emodb/conf/tuning/diffusion.yaml"))
    assert paper["process"]["steps"] == 4000 and paper["batch_size"] == 64 and paper["max_steps"] == 120000
    assert paper["denoiser"]["preset"] == "paper" and paper["conditioner"]["type"] == "bert"
    assert paper["conditioner"]["pretrained"]
    from ser.diffusion.denoiser import PAPER_PRESET
    assert PAPER_PRESET["channels"] == 1536


# --- data ---------------------------------------------------------------------------------------
def test_pad_segments_pads_with_minus_one():
    m = np.arange(300 * 2, dtype=np.float32).reshape(300, 2) / 1000.0
    segs = pad_segments(m, 256, 128)
    assert segs.shape == (2, 256, 2)                      # starts 0 and 300 - 256 = 44
    np.testing.assert_array_equal(segs[0], m[:256])
    np.testing.assert_array_equal(segs[1], m[44:300])
    short = pad_segments(m[:100], 256, 128)
    assert short.shape == (1, 256, 2)
    np.testing.assert_array_equal(short[0, :100], m[:100])
    assert (short[0, 100:] == -1.0).all()


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


# --- generation ---------------------------------------------------------------------------------
def test_generate_writes_a_valid_data_dir(corpus, trained, generated):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "utils", "validate_data_dir.py"), "--no-wav",
                           "--full-feats-check", str(generated)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    combos = sorted({(corpus["utt2spk"][u], corpus["utt2emo"][u], corpus["text"][u]) for u in corpus["lists"]["train"]})
    utt2spk, utt2emo = read_table(generated / "utt2spk"), read_table(generated / "utt2emo")
    text, cond = read_table(generated / "text"), read_table(generated / "utt2cond")
    assert len(utt2spk) == len(combos) * 2
    got = sorted((utt2spk[u], utt2emo[u], text[u]) for u in utt2spk)
    assert got == sorted(c for c in combos for _ in range(2))
    for u, spk in utt2spk.items():
        assert u.startswith(f"{spk}-syn") and u.endswith("-" + utt2emo[u]) and spk in TRAIN_SPK
        assert cond[u] == f"{text[u]} | emotion: {utt2emo[u]} | speaker: {spk}"
    frames = read_table(generated / "utt2num_frames")
    for u, m in kaldiio.load_scp(str(generated / "feats.scp")).items():
        assert m.shape[1] == 80 and 1 <= m.shape[0] <= 256 and int(frames[u]) == m.shape[0]
        assert m.min() >= -1.0 and m.max() <= 1.0 and np.isfinite(m).all()
    assert (generated / "conf.yaml").read_text() == (corpus["root"] / "data" / "conf.yaml").read_text()
    assert (generated / "model_train.list").read_text().split() == corpus["lists"]["train"]
    assert not (generated / "utt2uniq").exists()


def test_generate_is_reproducible_and_subsamples(corpus, trained, generated, capsys, tmp_path):
    assert generate.main(gen_args(trained, generated)) == 0
    assert "already generated" in capsys.readouterr().err
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert generate.main(gen_args(trained, out, 1, 3, 5, "--max-combinations", "3")) == 0
    ma, mb = kaldiio.load_scp(str(a / "feats.scp")), kaldiio.load_scp(str(b / "feats.scp"))
    assert list(ma) == list(mb) and len(ma) == 3
    assert all(np.array_equal(ma[u], mb[u]) for u in ma)
    assert read_table(a / "utt2cond") == read_table(b / "utt2cond")


def test_trim_padding():
    m = np.full((10, 3), -1.0, np.float32)
    m[:4] = 0.2
    m[6, 1] = -0.9                   # a quiet but non-silent frame keeps everything before it
    assert generate.trim_padding(m).shape == (7, 3)
    assert generate.trim_padding(np.full((5, 3), -1.0, np.float32)).shape == (1, 3)


# --- quality report -----------------------------------------------------------------------------
def test_mad_table_against_numpy():
    rng = np.random.default_rng(1)
    real = {"anger": rng.uniform(-1, 1, (5, 4, 6)), "sadness": rng.uniform(-1, 1, (3, 4, 6))}
    syn = {"anger": rng.uniform(-1, 1, (4, 4, 6)), "sadness": rng.uniform(-1, 1, (2, 4, 6))}
    rows = {r["emotion"]: r for r in mad_table(real, syn)}
    all_syn, all_real = [], []
    for e in real:
        mean = real[e].mean(0)
        ref = np.mean([np.mean(np.abs(s - mean)) for s in syn[e]])
        near = np.mean([min(np.mean(np.abs(s - r)) for r in real[e]) for s in syn[e]])
        assert rows[e]["mad"] == pytest.approx(ref, rel=1e-9)
        assert rows[e]["mad_nearest"] == pytest.approx(near, rel=1e-5)
        assert rows[e]["mad_real"] == pytest.approx(np.mean([np.mean(np.abs(r - mean)) for r in real[e]]), rel=1e-9)
        all_syn += [np.mean(np.abs(s - mean)) for s in syn[e]]
        all_real += [np.mean(np.abs(r - mean)) for r in real[e]]
    assert rows["all"]["mad"] == pytest.approx(np.mean(all_syn)) and rows["all"]["n_synthetic"] == 6
    assert rows["all"]["mad_real"] == pytest.approx(np.mean(all_real))
    with pytest.raises(SerError, match="no real segments of emotion 'happiness'"):
        mad_table(real, {"happiness": syn["anger"]})


def test_report_program(corpus, generated, tmp_path):
    out = tmp_path / "report"
    train_list = os.path.join(corpus["fold"], "train.list")
    assert diffusion_report.main(["--real-feats", corpus["data"], "--utt-list", train_list,
                                  "--synthetic", str(generated), "--out", str(out)]) == 0
    lines = (out / "mad.tsv").read_text().splitlines()
    assert lines[0].split("\t") == list(diffusion_report.COLUMNS)
    got = {l.split("\t")[0]: l.split("\t") for l in lines[1:]}
    # independent computation: pad to 256 frames with -1 (2 windows for > 256), mean real segment
    syn = kaldiio.load_scp(str(generated / "feats.scp"))
    syn_emo = read_table(generated / "utt2emo")
    for emo in EMOTIONS:
        real_segs = []
        for u in corpus["lists"]["train"]:
            if corpus["utt2emo"][u] != emo:
                continue
            m = corpus["mats"][u]
            for start in ([0] if len(m) <= 256 else [0, len(m) - 256]):
                seg = np.full((256, 80), -1.0)
                seg[:len(m[start:start + 256])] = m[start:start + 256]
                real_segs.append(seg)
        mean = np.mean(real_segs, axis=0)
        mads = []
        for u, m in syn.items():
            if syn_emo[u] == emo:
                seg = np.full((256, 80), -1.0)
                seg[:len(m)] = m
                mads.append(np.mean(np.abs(seg - mean)))
        assert int(got[emo][1]) == len(real_segs) and int(got[emo][2]) == len(mads)
        assert float(got[emo][3]) == pytest.approx(np.mean(mads), abs=1e-4)
    info = yaml.safe_load((out / "mad.json").read_text())
    assert "MEAN REAL SEGMENT" in info["definition"] and len(info["rows"]) == 4
    png = (out / "mel_grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000


def test_griffin_lim_recovers_a_tone():
    """A 1 kHz tone -> scaled mel (the real extractor) -> Griffin-Lim: the spectral peak is back."""
    from ser.features import build_extractor
    sr = 22050
    t = np.arange(sr // 2) / sr
    wave = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    conf = {"type": "mel"}
    mel = build_extractor(conf)(wave, sr)                 # (frames, 80) in [-1, 1]
    out, out_sr = griffin_lim(mel.T, {"sample_rate": sr}, n_iter=8)
    assert out_sr == sr and np.isfinite(out).all() and abs(len(out) - mel.shape[0] * 256) <= 1024
    spec = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak = np.fft.rfftfreq(len(out), 1 / sr)[np.argmax(spec)]
    assert abs(peak - 1000.0) < 60.0


# --- classifier on synthetic data ----------------------------------------------------------------
def cls_args(c, outdir, *extra):
    return ["--config", str(c["root"] / "cls.yaml"), "--feats-dir", c["data"], "--fold-dir", c["fold"],
            "--classes", c["classes"], "--seed", "1", "--ngpu", "0", "--num-threads", "1",
            "--outdir", str(outdir), *extra]


def frames_mean(mats):
    return np.concatenate(list(mats)).astype(np.float64).mean(0)


@pytest.mark.parametrize("source", ["both", "synthetic"])
def test_classifier_trains_on_synthetic_data(corpus, generated, tmp_path, source):
    out = tmp_path / source
    assert train.main(cls_args(corpus, out, "--synthetic-dirs", str(generated), "--train-source", source)) == 0
    _, meta = load_model(str(out))
    syn = list(kaldiio.load_scp(str(generated / "feats.scp")).values())
    real = [corpus["mats"][u] for u in corpus["lists"]["train"]]
    expected = frames_mean(syn + real) if source == "both" else frames_mean(syn)
    np.testing.assert_allclose(meta["cmvn_mean"], expected, rtol=1e-4, atol=1e-5)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["data"]["train_source"] == source and cfg["data"]["synthetic_dirs"] == [str(generated)]
    n_real = len(real) if source == "both" else 0
    assert f"train: {n_real} utterances + 0 augmented copies + {len(syn)} synthetic" in (out / "train.log").read_text()


def test_classifier_config_without_synthetic_data_is_unchanged(corpus):
    args = train.get_parser().parse_args(cls_args(corpus, "x"))
    assert set(train.resolve_config(args)["data"]) == {"feats_dir", "fold_dir", "classes", "aug_dirs", "aug_policy"}
    assert resolve_train_source(None, []) == "real" and resolve_train_source(None, ["d"]) == "both"
    for bad, dirs in (("real", ["d"]), ("synthetic", []), ("both", [])):
        with pytest.raises(SerError):
            resolve_train_source(bad, dirs)


def relabel(src, dest, new_spk):
    """A copy of synthetic dir `src` whose utterances are conditioned on speaker `new_spk`."""
    shutil.copytree(src, dest)
    for name in ("utt2spk", "utt2emo", "feats.scp"):
        table = read_table(dest / name)
        new = {new_spk + u[2:]: (new_spk if name == "utt2spk" else v) for u, v in table.items()}
        write_table(dest / name, new)
    return dest


def test_classifier_refuses_bad_synthetic_dirs(corpus, generated, tmp_path):
    test_syn = relabel(generated, tmp_path / "test_spk", "10")
    with pytest.raises(SerError, match=r"synthetic utterance '10-syn\d+-\w+' is conditioned on speaker '10', "
                                       r"a valid/test speaker"):
        train.main(cls_args(corpus, tmp_path / "exp", "--synthetic-dirs", str(test_syn)))
    assert not (tmp_path / "exp" / "model.pt").exists()
    # a speaker of no split at all
    other = relabel(generated, tmp_path / "other_spk", "77")
    with pytest.raises(SerError, match="'77', not a training speaker"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], synthetic_dirs=[str(other)])
    # generated by a diffusion model that saw a test utterance
    leaky = tmp_path / "leaky"
    shutil.copytree(generated, leaky)
    seen = corpus["lists"]["train"] + corpus["lists"]["test"][:1]
    (leaky / "model_train.list").write_text("".join(u + "\n" for u in seen))
    with pytest.raises(SerError, match=f"trained on '{corpus['lists']['test'][0]}', which is not in"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], synthetic_dirs=[str(leaky)])
    os.unlink(leaky / "model_train.list")
    with pytest.raises(SerError, match="has no model_train.list"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], synthetic_dirs=[str(leaky)])
    # the real data dir passed as "synthetic" (ids of real utterances)
    fake = tmp_path / "real_as_syn"
    shutil.copytree(corpus["data"], fake)
    (fake / "model_train.list").write_text("".join(u + "\n" for u in corpus["lists"]["train"]))
    with pytest.raises(SerError, match="already used by a real or training utterance"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], synthetic_dirs=[str(fake)])


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


def test_synthetic_source_keeps_the_folds_adaptation_utterances(corpus, generated, tmp_path):
    """Paper 2, Figure 4: synthetic source data plus the real target utterances of adapt.list."""
    fold = tmp_path / "fold"
    shutil.copytree(corpus["fold"], fold)
    adapt = corpus["lists"]["train"][:3]
    (fold / "adapt.list").write_text("".join(u + "\n" for u in adapt))
    data = load_fold(corpus["data"], str(fold), corpus["classes"], synthetic_dirs=[str(generated)],
                     train_source="synthetic")
    n_syn = len(kaldiio.load_scp(str(generated / "feats.scp")))
    assert sorted(set(data.train_source) - set(data.synthetic)) == sorted(adapt)
    assert len(data.synthetic) == n_syn
    # without adapt.list the synthetic source has no real utterance
    plain = load_fold(corpus["data"], corpus["fold"], corpus["classes"], synthetic_dirs=[str(generated)],
                      train_source="synthetic")
    assert set(plain.train_source) == set(plain.synthetic)
    (fold / "adapt.list").write_text(corpus["lists"]["test"][0] + "\n")
    with pytest.raises(SerError, match="adaptation utterance .* is not in train.list"):
        load_fold(corpus["data"], str(fold), corpus["classes"], synthetic_dirs=[str(generated)],
                  train_source="synthetic")
