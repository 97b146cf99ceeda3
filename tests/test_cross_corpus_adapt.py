"""Cross-corpus adaptation folds (make_cross_corpus_fold --test-fraction/--adapt-fraction, paper 2
Figure 4), egs/cross_corpus/run.sh --setup adapt stages 0-1, the adaptation report, and the
synthetic-data setup (paper 2, Table 3) of run.sh end to end on tiny data."""
import itertools
import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, copy_recipe
from ser.bin import adapt_report, make_cross_corpus_fold as mccf
from ser.errors import SerError, run_main
from ser.eval.adapt_plot import parse_adapt_tag
from ser.eval.cross_corpus import _imbalance, balanced_speaker_subset
from ser.training.dataset import load_fold
from test_cross_corpus import FOUR, make_data, read_list, read_table

FRACTIONS = ["0", "0.1", "0.2", "0.3", "0.4", "0.5"]
# Source: 3 speakers (one is held out for model selection). Target "balanced": 6 actors with the
# same class counts (as RAVDESS); "unbalanced": 5 speakers of different sizes.
SRC3 = [(s, e, n) for s, k in (("03", 0), ("08", 1), ("10", 2)) for e, n in
        (("anger", 4 + k), ("happiness", 3), ("neutral", 2 + k), ("sadness", 3), ("boredom", 2))]
BALANCED = [(a, e, n) for a in ("01", "02", "03", "04", "05", "06") for e, n in
            (("anger", 7), ("happiness", 6), ("neutral", 3), ("sadness", 5), ("calm", 2))]
UNBALANCED = [(a, e, n + k) for k, a in enumerate(("11", "12", "13", "14", "15")) for e, n in
              (("anger", 7), ("happiness", 2), ("neutral", 4), ("sadness", 5), ("fear", 1))]


def adapt_fold(tmp_path, out, fraction, tgt="tgt", seed=1, unit=None, extra=()):
    args = ["--src-data", str(tmp_path / "src"), "--tgt-data", str(tmp_path / tgt), "--test-fraction", "0.5",
            "--adapt-fraction", str(fraction), "--seed", str(seed), *(["--adapt-unit", unit] if unit else []),
            *extra, str(tmp_path / out)]
    with pytest.raises(SystemExit) as e:
        run_main(mccf.main, args)
    return e.value.code


def lists(d):
    return {n: read_list(Path(d) / "1" / f"{n}.list") for n in ("train", "valid", "test", "adapt")}


@pytest.fixture
def corpora(tmp_path):
    src = make_data(tmp_path / "src", "e", SRC3, prefix="emodb-")
    bal = make_data(tmp_path / "tgt", "r", BALANCED, prefix="ravdess-")
    unb = make_data(tmp_path / "tgt_unb", "m", UNBALANCED, prefix="msp-")
    return src, bal, unb


def check_nested_fractions(tmp_path, tgt, unit, t_spk, t_emo, s_spk, s_emo):
    """The properties every adaptation split must have, over the fractions 0 .. 0.5."""
    n_tgt = Counter(e for e in t_emo.values() if e in FOUR)
    folds = {}
    for f in FRACTIONS:
        assert adapt_fold(tmp_path, f"{unit}/adapt{f}", f, tgt=tgt, unit=unit) == 0
        folds[f] = lists(tmp_path / unit / f"adapt{f}")
    test = folds["0"]["test"]
    test_counts = Counter(t_emo[u] for u in test)
    pool_counts = {c: n_tgt[c] - test_counts[c] for c in FOUR}
    valid_spk = {s_spk[u] for u in folds["0"]["valid"]}
    assert len(valid_spk) == 1 and folds["0"]["adapt"] == []
    src_train = sorted(u for u, e in s_emo.items() if e in FOUR and s_spk[u] not in valid_spk)
    previous = set()
    for f in FRACTIONS:
        d = folds[f]
        # the test part is the same for every fraction; model selection on the held-out source speaker
        assert d["test"] == test and d["valid"] == folds["0"]["valid"]
        assert d["valid"] == sorted(u for u, e in s_emo.items() if e in FOUR and s_spk[u] in valid_spk)
        # train = source minus the validation speaker + the added target utterances
        assert d["train"] == sorted(src_train + d["adapt"])
        added = set(d["adapt"])
        assert not added & set(test) and all(u in t_emo and t_emo[u] in FOUR for u in added)
        # per class round(F * n_c) of the whole target (at most what the other half holds)
        got = Counter(t_emo[u] for u in added)
        for c in FOUR:
            assert got[c] == min(int(np.floor(float(f) * n_tgt[c] + 0.5)), pool_counts[c]), (f, c)
        assert previous <= added, f"fraction {f} does not contain the previous fraction's utterances"
        previous = added
        info = yaml.safe_load((tmp_path / unit / f"adapt{f}" / "1" / "info.yaml").read_text())
        assert info["adapt_fraction"] == float(f) and info["num_adapt"] == len(added)
        assert info["counts"]["train_target"] == {c: got[c] for c in FOUR if got[c]}
    return folds, test_counts, n_tgt


def test_utterance_unit_split_exact_halves_nested_and_disjoint(tmp_path, corpora):
    (s_spk, s_emo, _), _, (t_spk, t_emo, _) = corpora
    folds, test_counts, n_tgt = check_nested_fractions(tmp_path, "tgt_unb", "utterance", t_spk, t_emo, s_spk, s_emo)
    for c in FOUR:   # exactly half of every class (round half up)
        assert test_counts[c] == int(np.floor(0.5 * n_tgt[c] + 0.5)), c
    # the paper's random sample: not the first half of each class in sorted order
    firsts = {c: sorted(u for u, e in t_emo.items() if e == c)[:test_counts[c]] for c in FOUR}
    assert any(sorted(u for u in folds["0"]["test"] if t_emo[u] == c) != firsts[c] for c in FOUR)


def test_speaker_unit_balanced_target_is_split_exactly_by_speaker(tmp_path, corpora):
    (s_spk, s_emo, _), (t_spk, t_emo, _), _ = corpora
    folds, test_counts, n_tgt = check_nested_fractions(tmp_path, "tgt", "speaker", t_spk, t_emo, s_spk, s_emo)
    assert all(test_counts[c] * 2 == n_tgt[c] for c in FOUR)    # 3 of the 6 identical actors
    test_spk = {t_spk[u] for u in folds["0"]["test"]}
    assert len(test_spk) == 3
    # whole speakers: no test speaker has an utterance in any training list
    for f in FRACTIONS:
        assert not test_spk & {t_spk[u] for u in folds[f]["adapt"]}
    info = yaml.safe_load((tmp_path / "speaker/adapt0.5/1/info.yaml").read_text())
    assert info["speakers_in_train_and_test"] == 0 and info["adapt_unit"] == "speaker"
    assert sorted(info["test_speakers"]) == sorted(test_spk)


def test_speaker_unit_unbalanced_target_is_the_best_speaker_subset(tmp_path, corpora):
    _, _, (t_spk, t_emo, _) = corpora
    assert adapt_fold(tmp_path, "a", 0.3, tgt="tgt_unb") == 0
    test = read_list(tmp_path / "a/1/test.list")
    spk = sorted({s for s in t_spk.values()})
    counts = np.array([[sum(1 for u, e in t_emo.items() if t_spk[u] == s and e == c) for c in FOUR] for s in spk])
    totals = counts.sum(0)
    # independent brute force over the 2^5 speaker subsets: the split reaches the minimum imbalance
    best = min(np.sum(((counts[list(m)].sum(0) - totals / 2) / totals) ** 2)
               for r in range(len(spk) + 1) for m in itertools.combinations(range(len(spk)), r))
    got = Counter(t_emo[u] for u in test)
    assert np.isclose(np.sum(((np.array([got[c] for c in FOUR]) - totals / 2) / totals) ** 2), best)


def test_local_search_for_many_speakers_is_close_to_half():
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 30, (40, 4))
    sel = balanced_speaker_subset(counts, 0.5, np.random.default_rng(1))
    dev = counts[sel].sum(0) - 0.5 * counts.sum(0)
    assert np.all(np.abs(dev) <= 0.01 * counts.sum(0)), dev
    # a random half of the speakers is far worse: the search does something
    random_half = rng.permutation(40)[:20]
    assert _imbalance(counts[sel].sum(0), 0.5 * counts.sum(0), counts.sum(0)) < \
        _imbalance(counts[random_half].sum(0), 0.5 * counts.sum(0), counts.sum(0)) / 10


def test_adaptation_split_is_reproducible_from_the_seed(tmp_path, corpora):
    for out, seed in (("a", 4), ("b", 4), ("c", 5)):
        assert adapt_fold(tmp_path, out, 0.2, seed=seed) == 0
    for name in ("train.list", "valid.list", "test.list", "adapt.list", "info.yaml"):
        assert (tmp_path / "a/1" / name).read_bytes() == (tmp_path / "b/1" / name).read_bytes()
    assert (tmp_path / "a/1/adapt.list").read_text() != (tmp_path / "c/1/adapt.list").read_text()


def test_adaptation_option_errors(tmp_path, corpora, capsys):
    assert adapt_fold(tmp_path, "x", 0.6) == 1
    assert "--adapt-fraction must be in [0, 0.5], got 0.6" in capsys.readouterr().err
    assert adapt_fold(tmp_path, "x", 0.1, extra=["--src-valid-speakers", "3"]) == 1
    assert "--src-valid-speakers must be between 1 and 2" in capsys.readouterr().err
    with pytest.raises(SerError, match="--adapt-fraction needs --test-fraction"):
        mccf.main(["--src-data", str(tmp_path / "src"), "--tgt-data", str(tmp_path / "tgt"),
                   "--adapt-fraction", "0.1", str(tmp_path / "x")])
    with pytest.raises(SerError, match="exclude each other"):
        mccf.main(["--src-data", str(tmp_path / "src"), "--tgt-data", str(tmp_path / "tgt"),
                   "--dev-fraction", "0.3", "--test-fraction", "0.5", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
    # the utterance unit puts test speakers into training: said on stderr
    assert adapt_fold(tmp_path, "u", 0.2, unit="utterance") == 0
    assert "ser.bin.train refuses such a fold" in capsys.readouterr().err


# --- egs/cross_corpus/run.sh --setup adapt, stages 0-1 ---------------------------------------------
def run(recipe, env, *args):
    return subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)


def make_recipes(tmp_path, feat="spec", conf=None, src_spec=SRC3, tgt_spec=BALANCED, mel=False):
    conf = conf or REPO / "egs" / "TEMPLATE" / "conf" / "feats" / f"{feat}.yaml"
    rng = np.random.default_rng(3)
    src = make_data(tmp_path / f"emodb/data/all_{feat}", "e", src_spec, feats=True, conf=conf, rng=rng)
    tgt = make_data(tmp_path / f"ravdess/data/all_{feat}", "r", tgt_spec, feats=True, conf=conf, rng=rng)
    if mel:   # scaled mel values lie in [-1, 1] (the diffusion model checks it)
        import kaldiio
        for side in ("emodb", "ravdess"):
            d = tmp_path / side / "data" / f"all_{feat}"
            mats = {u: np.tanh(rng.standard_normal((m.shape[0], 8))).astype(np.float32)
                    for u, m in kaldiio.load_scp(str(d / "feats.scp")).items()}
            with kaldiio.WriteHelper(f"ark,scp:{d}/feats2.ark,{d}/feats.scp") as w:
                for u in sorted(mats):
                    w(u, mats[u])
    return copy_recipe("cross_corpus", tmp_path / "cross_corpus"), src, tgt


def test_recipe_adapt_stages_0_1(tmp_path, script_env):
    recipe, (s_spk, s_emo, _), (t_spk, t_emo, _) = make_recipes(tmp_path)
    r = run(recipe, script_env, "--setup", "adapt", "--adapt_fractions", "0.2 0.10", "--stop_stage", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    split = recipe / "data/emodb_to_ravdess_folds/adapt_test0.5_speaker_srcvalid1_seed1"
    assert sorted(p.name for p in split.iterdir()) == ["adapt0", "adapt0.1", "adapt0.2"]
    assert r.stdout.count("Stage 2: adaptation split") == 3
    a1, a2 = lists(split / "adapt0.1"), lists(split / "adapt0.2")
    assert set(a1["adapt"]) < set(a2["adapt"]) and a1["test"] == a2["test"]
    assert all(u.startswith("ravdess-") for u in a2["adapt"]) and all(u.startswith("emodb-") for u in a2["valid"])
    # train.py's reader accepts the fold: no training speaker is a valid/test speaker
    fold = load_fold(str(recipe / "data/emodb_to_ravdess_spec"), str(split / "adapt0.2" / "1"),
                     str(split / "adapt0.2" / "classes.txt"))
    assert sorted(fold.train) == a2["train"] and sorted(fold.valid) == a2["valid"]
    r = run(recipe, script_env, "--setup", "adapt", "--adapt_fractions", "0.1 0.2", "--stop_stage", "2")
    assert r.returncode == 0 and r.stdout.count("Stage 2: skipped") == 3, r.stdout + r.stderr
    r = run(recipe, script_env, "--setup", "adapt", "--augs", "real+syn", "--feat", "spec", "--stage", "3")
    assert r.returncode != 0 and "needs --feat mel" in r.stderr
    r = run(recipe, script_env, "--setup", "adapt", "--adapt_fractions", "0.1 x", "--stage", "3")
    assert r.returncode != 0 and "'x' is not a number" in r.stderr


# --- adaptation report ------------------------------------------------------------------------------
def fake_run(exp, tag, seed, uar, fold_dir):
    run_dir = exp / tag / "fold.1" / f"seed{seed}"
    (run_dir / "test_clean").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"data": {"fold_dir": str(fold_dir)}}))
    m = {"uar": uar, "wa": uar, "confusion": [[1, 0], [0, 1]], "classes": ["a", "b"], "num_utts": 2}
    (run_dir / "test_clean" / "metrics.json").write_text(json.dumps(m))
    (run_dir / "test_clean" / "done").write_text("")


def test_adapt_report_table_and_plot(tmp_path):
    exp = tmp_path / "recipe" / "exp" / "emodb_to_ravdess_adapt" / "adapt_test0.5_speaker_srcvalid1_seed1"
    uars = {("none", "0"): [0.40, 0.44], ("none", "0.2"): [0.50, 0.56], ("real_syn", "0"): [0.45, 0.47]}
    for (aug, f), values in uars.items():
        fold = tmp_path / "recipe" / "data" / f"adapt{f}" / "1"
        fold.mkdir(parents=True, exist_ok=True)
        (fold / "info.yaml").write_text(yaml.safe_dump({"num_adapt": 17 if f == "0.2" else 0, "num_test": 40,
                                                        "test_fraction": 0.5, "adapt_unit": "speaker",
                                                        "num_valid": 9, "valid_speakers": ["emodb-08"]}))
        for seed, v in enumerate(values, 1):
            fake_run(exp, f"mel_cnn_blstm_{aug}_f{f}_0123abcd", seed, v, f"data/adapt{f}/1")
    assert parse_adapt_tag("mel_cnn_blstm_real_syn_f0.2_0123abcd") == ("mel_cnn_blstm_real_syn", 0.2)
    assert parse_adapt_tag("mel_cnn_blstm_real_syn_0123abcd") is None
    out = tmp_path / "recipe" / "RESULTS_adapt.md"
    assert adapt_report.main(["--exp-dir", str(exp), "--out", str(out)]) == 0
    text = out.read_text()
    rows = {l.split("|")[1].strip(): [c.strip() for c in l.split("|")[2:-1]] for l in text.splitlines()
            if l.startswith("| mel_") or l.startswith("| *target")}
    ref = {k: (100 * np.mean(v), 100 * np.std(v, ddof=1)) for k, v in uars.items()}
    assert rows["mel_cnn_blstm_none"] == [f"{ref[('none', '0')][0]:.1f} ± {ref[('none', '0')][1]:.1f} (2)",
                                          f"{ref[('none', '0.2')][0]:.1f} ± {ref[('none', '0.2')][1]:.1f} (2)"]
    assert rows["mel_cnn_blstm_real_syn"] == ["46.0 ± 1.4 (2)", "–"]
    assert rows["*target utterances added*"] == ["0", "17"]
    assert "| setting | 0 % | 20 % |" in text and "emodb-08" in text
    assert (exp / "adapt_uar.png").read_bytes()[:4] == b"\x89PNG"
    assert "](exp/emodb_to_ravdess_adapt/adapt_test0.5_speaker_srcvalid1_seed1/adapt_uar.png)" in text


# --- the synthetic-data setup end to end (tiny) -------------------------------------------------------
DIFFUSION = """process: {steps: 20}
denoiser: {channels: 16, num_layers: 2, num_res_blocks: 1, heads: 2, time_dim: 16, cond_dim: 16, norm_groups: 4}
conditioner: {type: sentencepiece, dim: 16, layers: 1, heads: 2, num_tokens: 2}
spm: {vocab_size: 40}
batch_size: 4
optim: {lr: 1.0e-3, warmup_steps: 2}
max_steps: 2
checkpoint_every: 2
log_every: 2
"""
CNN_BLSTM = """model: cnn_blstm
model_conf: {conv_channels: [4, 4, 4], kernel: 3, lstm_hidden: 4, lstm_layers: 1}
segment: {length: 256, shift: 128}
batch_size: 16
optim: {lr: 1.0e-3}
max_epochs: 1
plateau: {patience: 1, factor: 0.5}
early_stop_patience: 2
mixup: {enabled: false, alpha: 0.2}
"""


def synthetic_recipe(tmp_path):
    """Tiny mel corpora (8 bands, values in [-1, 1]) and a recipe copy with tiny configs."""
    conf = tmp_path / "mel.yaml"
    c = yaml.safe_load((REPO / "egs/TEMPLATE/conf/feats/mel.yaml").read_text())
    c["num_mels"] = 8
    conf.write_text(yaml.safe_dump(c))
    small_src = [(s, e, 2) for s in ("03", "08", "10") for e in FOUR]
    small_tgt = [(a, e, 2) for a in ("01", "02") for e in FOUR]
    recipe, src, tgt = make_recipes(tmp_path, "mel", conf, small_src, small_tgt, mel=True)
    tiny = recipe / "conf" / "tiny"
    tiny.mkdir(parents=True)
    (tiny / "diffusion.yaml").write_text(DIFFUSION)
    (tiny / "train_cnn_blstm.yaml").write_text(CNN_BLSTM)
    return recipe, src, tgt


def check_synthetic(recipe, exp, split, source_train):
    """The diffusion model of `exp` saw exactly `source_train`; its samples are conditioned on the
    (prefixed) source training speakers; returns the synthetic dir."""
    (ddir,) = exp.glob(f"diffusion_{split}*")
    assert read_list(ddir / "fold.1" / "train_utts.list") == source_train
    syn = ddir / "fold.1" / "syn_s2_n1"
    spk = read_table(recipe / "data/emodb_mel/utt2spk")
    assert set(read_table(syn / "utt2spk").values()) == {spk[u] for u in source_train}
    assert all(s.startswith("emodb-") for s in read_table(syn / "utt2spk").values())
    assert set(read_table(syn / "utt2emo").values()) == set(FOUR)
    assert read_list(syn / "model_train.list") == source_train
    return syn


def test_recipe_synthetic_setup_through_training(tmp_path, script_env):
    """Stages 0-2 of --augs real+syn (mel, cnn_blstm by default): a diffusion model on the SOURCE
    training utterances, its samples, and a classifier on real + synthetic data, which
    ser.training.dataset accepts with the corpus-prefixed speaker ids."""
    recipe, _, _ = synthetic_recipe(tmp_path)
    r = run(recipe, script_env, "--augs", "real+syn", "--conf_dir", "conf/tiny", "--nrepeats", "1",
            "--sampling_steps", "2", "--griffin_lim", "0", "--stop_stage", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    for what in ("Stage 3: training the diffusion model on the emodb training utterances",
                 "Stage 3: sampling 1 synthetic segment(s) per combination with S=2",
                 "Stage 3: training cnn_blstm (mel, aug real+syn, seeds 1..1) on emodb"):
        assert what in r.stdout, (what, r.stdout)
    exp = recipe / "exp" / "emodb_to_ravdess"
    folds = recipe / "data/emodb_to_ravdess_folds/dev0.3_seed1"
    syn = check_synthetic(recipe, exp, "dev0.3_seed1", read_list(folds / "1/train.list"))
    (run_dir,) = exp.glob("mel_cnn_blstm_real_syn_*/fold.1/seed1")
    assert (run_dir / "done").exists() and (run_dir / "model.pt").exists()
    cfg = (run_dir / "config.yaml").read_text()
    assert str(syn.relative_to(recipe)) in cfg and "both" in cfg


@pytest.mark.skipif(not os.environ.get("SER_SLOW_TESTS"),
                    reason="several minutes on a loaded 2-core machine: set SER_SLOW_TESTS=1")
def test_recipe_synthetic_setups_end_to_end(tmp_path, script_env):
    """Every stage of --augs "syn real+syn" (split) and of --setup adapt with real+syn."""
    recipe, _, (t_spk, t_emo, _) = synthetic_recipe(tmp_path)
    common = ["--conf_dir", "conf/tiny", "--nrepeats", "1", "--sampling_steps", "2"]
    r = run(recipe, script_env, "--augs", "syn real+syn", *common)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Stage 4: scoring cnn_blstm (syn" in r.stdout and "Stage 5: report" in r.stdout
    exp = recipe / "exp" / "emodb_to_ravdess"
    folds = recipe / "data/emodb_to_ravdess_folds/dev0.3_seed1"
    check_synthetic(recipe, exp, "dev0.3_seed1", read_list(folds / "1/train.list"))
    test = read_list(folds / "1/test.list")
    runs = {p.name.rsplit("_", 1)[0]: p for p in exp.glob("mel_cnn_blstm_*")}
    assert set(runs) == {"mel_cnn_blstm_syn", "mel_cnn_blstm_real_syn"}
    for d in runs.values():
        assert json.loads((d / "fold.1/seed1/test_clean/metrics.json").read_text())["num_utts"] == len(test)
    assert "mel_cnn_blstm" in (recipe / "RESULTS.md").read_text()

    r = run(recipe, script_env, "--setup", "adapt", "--adapt_fractions", "0 0.5", "--augs", "real+syn", *common)
    assert r.returncode == 0, r.stdout + r.stderr
    split = "adapt_test0.5_speaker_srcvalid1_seed1"
    exp = recipe / "exp" / "emodb_to_ravdess_adapt" / split
    folds = recipe / "data/emodb_to_ravdess_folds" / split
    check_synthetic(recipe, exp, "", read_list(folds / "adapt0/1/train.list"))
    assert len(read_list(folds / "adapt0.5/1/adapt.list")) == 8   # one of the two target speakers
    for f in ("0", "0.5"):
        (d,) = exp.glob(f"mel_cnn_blstm_real_syn_f{f}_*")
        m = json.loads((d / "fold.1/seed1/test_clean/metrics.json").read_text())
        assert m["num_utts"] == len(read_list(folds / f"adapt{f}/1/test.list")) == 8
    text = (recipe / "RESULTS_adapt.md").read_text()
    assert "| setting | 0 % | 50 % |" in text and "| mel_cnn_blstm_real_syn |" in text
    assert (exp / "adapt_uar.png").exists()
