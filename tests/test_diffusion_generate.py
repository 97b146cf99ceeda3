"""Generation and its uses, on the tiny mel corpus and model of diffusion_helpers.py:
ser.bin.generate (a valid synthetic data dir, reproducible, subsampled combinations, trimmed
padding), the quality report ser.bin.diffusion_report (MAD table, mel grid, Griffin-Lim), and the
classifier trainer ser.bin.train on synthetic data (train sources, refused synthetic dirs, the
fold's adaptation utterances kept with a synthetic source).
"""
import math
import os
import shutil
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import yaml

from ser.bin import diffusion_report, generate, train
from ser.diffusion.quality import griffin_lim, harmonic_bands, harmonicity, harmonicity_table, mad_table
from ser.errors import SerError
from ser.training.dataset import load_fold, resolve_train_source
from ser.training.model_io import load_model

import diffusion_helpers
from diffusion_helpers import EMOTIONS, REPO, TRAIN_SPK, gen_args, read_table, write_table

# The shared module-scoped fixtures, bound here so that pytest finds them.
corpus = diffusion_helpers.corpus
pytestmark = pytest.mark.usefixtures("one_thread")
trained, generated = diffusion_helpers.trained, diffusion_helpers.generated


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
    info = yaml.safe_load((generated / "synthetic.yaml").read_text())
    assert info["sampling_seconds"] > 0                 # a record of the sampling, not an argument:
    assert generate.main(gen_args(trained, generated)) == 0
    assert "already generated" in capsys.readouterr().err
    assert yaml.safe_load((generated / "synthetic.yaml").read_text()) == info   # the skip leaves it
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert generate.main(gen_args(trained, out, 1, 3, 5, "--max-combinations", "3")) == 0
    ma, mb = kaldiio.load_scp(str(a / "feats.scp")), kaldiio.load_scp(str(b / "feats.scp"))
    assert list(ma) == list(mb) and len(ma) == 3
    assert all(np.array_equal(ma[u], mb[u]) for u in ma)
    assert read_table(a / "utt2cond") == read_table(b / "utt2cond")
    # DDIM is another set: recorded as such, and the ancestral record does not count as it
    c = tmp_path / "c"
    assert generate.main(gen_args(trained, c, 1, 3, 5, "--max-combinations", "3", "--sampler", "ddim")) == 0
    assert yaml.safe_load((c / "synthetic.yaml").read_text())["sampler"] == "ddim"
    mc = kaldiio.load_scp(str(c / "feats.scp"))
    assert list(mc) == list(ma) and not all(np.array_equal(ma[u], mc[u]) for u in ma)
    capsys.readouterr()
    assert generate.main(gen_args(trained, c, 1, 3, 5, "--max-combinations", "3")) == 0
    assert "already generated" not in capsys.readouterr().err
    with pytest.raises(SerError, match="--eta must be in"):
        generate.main(gen_args(trained, c, 1, 3, 5, "--sampler", "ddim", "--eta", "2"))


def test_a_model_dir_without_its_training_list_is_refused_before_sampling(trained, tmp_path):
    """The samples' fold check needs the model's training utterances: refused up front, nothing written."""
    model = tmp_path / "model"
    shutil.copytree(trained, model)
    (model / "train_utts.list").unlink()
    with pytest.raises(SerError, match=r"model/train_utts.list: no such file"):
        generate.main(gen_args(model, tmp_path / "syn"))
    assert not (tmp_path / "syn").exists()


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


def test_harmonic_bands_of_the_slaney_scale():
    """Slaney mel is linear below 1 kHz (200/3 Hz per mel): 80 bands up to 8 kHz are spaced
    mel(8000) / 81 mels apart, so the centres below 1 kHz and the F0 lags follow in closed form."""
    spacing = (15 + 27 * math.log(8.0) / math.log(6.4)) / 81 * 200 / 3          # 37.2 Hz
    low, lags = harmonic_bands({"num_mels": 80, "f_min": 0.0, "f_max": 8000.0, "mel_scale": "slaney"})
    assert low == math.floor(1000 / spacing) == 26
    assert (lags.start, lags.stop - 1) == (max(2, math.floor(80 / spacing)), math.ceil(400 / spacing))
    with pytest.raises(SerError, match="too few to resolve harmonics"):
        harmonic_bands({"num_mels": 20})
    # the segments' band count stands in for a config without num_mels, and must match one with it
    assert harmonic_bands({}, 80) == (low, lags)
    with pytest.raises(SerError, match="the segments have 40 bands, the mel config 80"):
        harmonic_bands({"num_mels": 80}, 40)


def test_harmonicity_tells_a_voice_from_noise_and_skips_silence():
    """A harmonic comb (F0 150 Hz) along the low bands scores far above white noise; noise scores
    its own floor; frames at the padding level are not counted."""
    low, lags = harmonic_bands()
    spacing = 1000 / 26.9
    f = np.arange(1, 81) * spacing
    comb = np.log(1e-3 + sum(np.exp(-0.5 * ((f - h * 150.0) / 20.0) ** 2) for h in range(1, 8)))
    comb = (comb - comb.min()) / (comb.max() - comb.min()) * 1.4 - 0.7          # scaled to [-0.7, 0.7]
    rng = np.random.default_rng(0)
    voiced = np.repeat(comb[None, :, None], 40, axis=2) + 0.02 * rng.normal(size=(2, 80, 40))
    silent = np.full((2, 80, 30), -1.0)
    h_voiced, n = harmonicity(np.concatenate([voiced, silent], axis=2), low, lags)
    assert n == 2 * 40 and h_voiced > 0.7
    table = harmonicity_table({"anger": voiced}, {"anger": rng.normal(0, 0.3, (4, 80, 40))})
    assert table["anger"]["harmonicity_real"] == pytest.approx(h_voiced)
    assert table["anger"]["harmonicity"] == pytest.approx(table["anger"]["harmonicity_noise"], abs=0.03)
    assert table["anger"]["harmonicity_noise"] < 0.4 and set(table) == {"anger", "all"}
    assert harmonicity(silent, low, lags)[1] == 0


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
    assert "F0 = 80..400 Hz" in info["harmonicity_definition"] and "Harmonicity" not in info["definition"]
    assert all(0 < r["harmonicity_noise"] < 1 for r in info["rows"])
    png = (out / "mel_grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000


def test_report_program_skips_a_current_report(corpus, generated, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["--real-feats", corpus["data"], "--utt-list", os.path.join(corpus["fold"], "train.list"),
            "--synthetic", str(generated), "--out", str(out), "--per-emotion", "1"]
    assert diffusion_report.main(args) == 0
    first = capsys.readouterr()
    stamp = os.path.getmtime(out / "mad.json")
    assert diffusion_report.main(args) == 0          # same arguments and inputs: nothing rewritten
    again = capsys.readouterr()
    assert "already reported" in again.err and again.out == first.out
    assert os.path.getmtime(out / "mad.json") == stamp
    assert diffusion_report.main(args[:-1] + ["2"]) == 0   # another argument: reported anew
    assert "already reported" not in capsys.readouterr().err
    assert yaml.safe_load((out / "mad.json").read_text())["per_emotion"] == 2
    stamp = os.path.getmtime(out / "mad.json")
    made = os.stat(generated / "feats.scp")
    os.utime(generated / "feats.scp", (stamp + 10, stamp + 10))   # the set was made again
    try:
        assert diffusion_report.main(args[:-1] + ["2"]) == 0
        assert "already reported" not in capsys.readouterr().err
        assert os.path.getmtime(out / "mad.json") > stamp
    finally:   # the module's shared set
        os.utime(generated / "feats.scp", ns=(made.st_atime_ns, made.st_mtime_ns))


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
