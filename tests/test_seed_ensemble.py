"""The mean posterior over an experiment's seeds (ser.bin.ensemble_seeds), its report row and the
recipe's stage 4 hook."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ser.bin import ensemble_seeds, report
from ser.eval.scoring import write_scores
from eval_helpers import write_training_run

CLASSES = ["ang", "neu", "sad"]
TAG = "spec_densenet_none_aaaa"
UTTS = {1: ["s1-a", "s1-b", "s1-c", "s1-d"], 2: ["s2-a", "s2-b", "s2-c"]}
TRUE = {1: [0, 1, 2, 2], 2: [1, 0, 2]}
# fold -> seed -> posteriors; each seed alone gets some utterances wrong, their mean fewer
POST = {
    1: {1: [[.6, .3, .1], [.5, .4, .1], [.1, .2, .7], [.1, .5, .4]],
        2: [[.3, .4, .3], [.2, .7, .1], [.2, .1, .7], [.1, .3, .6]],
        3: [[.5, .2, .3], [.3, .6, .1], [.4, .3, .3], [.2, .4, .4]]},
    2: {1: [[.2, .5, .3], [.3, .4, .3], [.1, .1, .8]],
        2: [[.1, .8, .1], [.6, .3, .1], [.5, .2, .3]],
        3: [[.3, .6, .1], [.5, .4, .1], [.2, .2, .6]]},
}


def make_seed_run(exp, fold, seed, done=True, utts=None, tag=TAG, feats="spec", post=None):
    run = os.path.join(exp, tag, f"fold.{fold}", f"seed{seed}")
    cfg = {"model": "densenet", "max_epochs": 9, "seed": seed, "optim": {"lr": 0.001},
           "data": {"feats_dir": f"data/all_{feats}", "fold_dir": f"data/all_folds/{fold}"}}
    write_training_run(run, cfg, [0.5, 0.6], [3.0, 3.0])
    if done:
        open(os.path.join(run, "done"), "w").close()
    write_scores(os.path.join(run, "test_clean"), utts or UTTS[fold], TRUE[fold],
                 POST[fold][seed] if post is None else post, CLASSES)
    return run


@pytest.fixture
def exp(tmp_path):
    exp = str(tmp_path / "all")
    for feats in ("spec", "mel"):
        os.makedirs(tmp_path / "data" / f"all_{feats}")
        (tmp_path / "data" / f"all_{feats}" / "conf.yaml").write_text(f"type: {feats}\n")
    for fold in POST:
        for seed in POST[fold]:
            make_seed_run(exp, fold, seed)
    return exp


def uar(true, pred, n=3):
    recalls = [np.mean([p == c for t, p in zip(true, pred) if t == c]) for c in range(n) if c in true]
    return float(np.mean(recalls))


def test_each_fold_scores_the_mean_posterior_of_its_seeds(exp, capsys):
    assert ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "ens", TAG]) == 0
    for fold in POST:
        mean = np.mean([np.asarray(POST[fold][s]) for s in (1, 2, 3)], axis=0)
        cond = os.path.join(exp, "ens", f"fold.{fold}", "seed1", "test_clean")
        lines = open(os.path.join(cond, "predictions.tsv")).read().splitlines()
        assert lines[0].split("\t") == ["utt", "true", "pred"] + CLASSES
        got = np.array([[float(x) for x in ln.split("\t")[3:]] for ln in lines[1:]])
        np.testing.assert_allclose(got, mean, atol=5e-7)
        assert [ln.split("\t")[0] for ln in lines[1:]] == UTTS[fold]
        m = json.load(open(os.path.join(cond, "metrics.json")))
        assert m["uar"] == pytest.approx(uar(TRUE[fold], mean.argmax(1)))
        assert m["ensemble_seeds"] == [1, 2, 3]
        assert os.path.exists(os.path.join(cond, "done"))
        assert os.path.exists(os.path.join(cond, "confusion.png"))
    # fold 1: the seeds alone score 0.50 / 0.67 / 0.67 UAR; their mean posterior gets all four right
    assert json.load(open(os.path.join(exp, "ens", "fold.1", "seed1", "test_clean", "metrics.json")))["uar"] == 1.0
    tag_yaml = yaml.safe_load(open(os.path.join(exp, "ens", "tag.yaml")))
    assert tag_yaml == {"setting": "mean posterior of seeds 1 2 3", "ensemble_of": [TAG], "ensemble_seeds": [1, 2, 3]}
    out = capsys.readouterr().out
    assert "test_clean: mean UAR over 2 folds" in out and f"wrote {exp}/ens" in out


def test_seeds_option_restricts_the_members(exp):
    ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "ens", "--seeds", "1 3", TAG])
    cond = os.path.join(exp, "ens", "fold.2", "seed1", "test_clean")
    post = np.loadtxt(os.path.join(cond, "predictions.tsv"), skiprows=1, usecols=(3, 4, 5))
    np.testing.assert_allclose(post, (np.asarray(POST[2][1]) + np.asarray(POST[2][3])) / 2, atol=5e-7)
    assert yaml.safe_load(open(os.path.join(exp, "ens", "tag.yaml")))["ensemble_seeds"] == [1, 3]


def test_report_shows_the_ensemble_as_a_row_of_its_own(exp, tmp_path):
    ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "ens", TAG])
    out = tmp_path / "RESULTS.md"
    report.main(["--exp-dir", exp, "--out", str(out), "--fig-dir", str(tmp_path / "fig")])
    text = out.read_text()
    row = next(ln for ln in text.splitlines() if "mean posterior of seeds 1 2 3" in ln)
    fold_uars = [json.load(open(os.path.join(exp, "ens", f"fold.{k}", "seed1", "test_clean", "metrics.json")))["uar"]
                 for k in POST]
    assert f"{100 * np.mean(fold_uars):.1f}" in row
    # the member experiment is still reported over its three seeds
    assert any("densenet (spec)" in ln and "mean posterior" not in ln for ln in text.splitlines() if ln.startswith("|"))



def test_report_compares_each_ensemble_with_its_member_runs_per_fold(exp, tmp_path):
    # seeds 1 and 3 only: the members' mean must leave seed 2 out
    ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "ens", "--seeds", "1 3", TAG])
    out = tmp_path / "RESULTS.md"
    report.main(["--exp-dir", exp, "--out", str(out), "--fig-dir", str(tmp_path / "fig")])
    members = {k: np.mean([uar(TRUE[k], np.argmax(POST[k][s], 1)) for s in (1, 3)]) for k in POST}
    ensemble = {k: uar(TRUE[k], np.argmax(np.mean([POST[k][s] for s in (1, 3)], axis=0), 1)) for k in POST}
    gain = np.array([ensemble[k] - members[k] for k in POST]) * 100
    text = out.read_text()
    assert "## Ensembles against their members" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| densenet (spec; mean posterior of seeds 1 3)")
               and "all test_clean" in ln)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:5] == ["2", f"{100 * np.mean(list(members.values())):.1f}",
                          f"{100 * np.mean(list(ensemble.values())):.1f}"]
    better = int((gain > 0).sum())
    assert cells[5] == f"{gain.mean():+.1f} ± {gain.std(ddof=1) / np.sqrt(len(gain)):.1f} (better in {better} of 2)"
    # a report without any ensemble has no such section
    plain = tmp_path / "plain.md"
    shutil.rmtree(os.path.join(exp, "ens"))
    report.main(["--exp-dir", exp, "--out", str(plain), "--fig-dir", str(tmp_path / "fig2")])
    assert "## Ensembles against their members" not in plain.read_text()

MEL_TAG = "mel_densenet_none_bbbb"


def mel_posteriors(fold, seed):
    """Other posteriors for a second experiment: each seed's rows rotated by one class."""
    return [row[1:] + row[:1] for row in POST[fold][seed]]


def test_several_experiments_fuse_with_equal_weight_per_member(exp, tmp_path):
    for fold in POST:
        for seed in POST[fold]:
            make_seed_run(exp, fold, seed, tag=MEL_TAG, feats="mel", post=mel_posteriors(fold, seed))
    assert ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "fused", TAG, MEL_TAG]) == 0
    for fold in POST:
        members = [np.asarray(POST[fold][s]) for s in (1, 2, 3)] + [np.asarray(mel_posteriors(fold, s)) for s in (1, 2, 3)]
        post = np.loadtxt(os.path.join(exp, "fused", f"fold.{fold}", "seed1", "test_clean", "predictions.tsv"),
                          skiprows=1, usecols=(3, 4, 5))
        np.testing.assert_allclose(post, np.mean(members, axis=0), atol=5e-7)
    tag_yaml = yaml.safe_load(open(os.path.join(exp, "fused", "tag.yaml")))
    assert tag_yaml["ensemble_of"] == [TAG, MEL_TAG] and tag_yaml["features"] == "spec + mel"
    out = tmp_path / "RESULTS.md"
    report.main(["--exp-dir", exp, "--out", str(out), "--fig-dir", str(tmp_path / "fig")])
    assert "| densenet (spec + mel; mean posterior of 2 experiments, seeds 1 2 3 each) |" in out.read_text()
    # members must share their seeds: a second experiment with seed 3 missing everywhere is refused
    for fold in POST:
        shutil.rmtree(os.path.join(exp, MEL_TAG, f"fold.{fold}", "seed3"))
    r = subprocess.run([sys.executable, "-m", "ser.bin.ensemble_seeds", "--exp-dir", exp, "--out-tag", "fused",
                        TAG, MEL_TAG], capture_output=True, text=True)
    assert r.returncode == 1 and "do not have the same folds and seeds (seeds 1 2 3 against 1 2)" in r.stderr


def test_one_seed_of_several_experiments_is_a_fusion(exp, tmp_path):
    for fold in POST:
        make_seed_run(exp, fold, 1, tag=MEL_TAG, feats="mel", post=mel_posteriors(fold, 1))
    assert ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "fused", "--seeds", "1", TAG, MEL_TAG]) == 0
    for fold in POST:
        post = np.loadtxt(os.path.join(exp, "fused", f"fold.{fold}", "seed1", "test_clean", "predictions.tsv"),
                          skiprows=1, usecols=(3, 4, 5))
        np.testing.assert_allclose(post, (np.asarray(POST[fold][1]) + np.asarray(mel_posteriors(fold, 1))) / 2,
                                   atol=5e-7)
    out = tmp_path / "RESULTS.md"
    report.main(["--exp-dir", exp, "--out", str(out), "--fig-dir", str(tmp_path / "fig")])
    assert "| densenet (spec + mel; mean posterior of 2 experiments, seed 1 each) |" in out.read_text()


def test_protocol_counts_the_seeds_of_the_runs_not_the_ensembles_storage_slot(exp, tmp_path):
    # seeds 2-3 only, and their ensemble (stored under seed1): the protocol names seeds 2 and 3
    shutil.rmtree(os.path.join(exp, TAG, "fold.1", "seed1"))
    shutil.rmtree(os.path.join(exp, TAG, "fold.2", "seed1"))
    ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "ens", "--seeds", "2 3", TAG])
    out = tmp_path / "RESULTS.md"
    report.main(["--exp-dir", exp, "--out", str(out), "--fig-dir", str(tmp_path / "fig")])
    assert "Repeats (seeds): 2 (2, 3)." in out.read_text()


def test_refresh_redoes_the_ensemble_from_its_tag_yaml(exp):
    ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "ens", "--seeds", "1 2", TAG])
    POST_FOLD1_SEED2 = POST[1][2]
    try:
        POST[1][2] = [[.9, .05, .05]] * 4
        make_seed_run(exp, 1, 2)          # seed 2 of fold 1 re-scored with other posteriors
    finally:
        POST[1][2] = POST_FOLD1_SEED2
    ensemble_seeds.main(["--refresh", os.path.join(exp, "ens")])
    post = np.loadtxt(os.path.join(exp, "ens", "fold.1", "seed1", "test_clean", "predictions.tsv"),
                      skiprows=1, usecols=(3, 4, 5))
    np.testing.assert_allclose(post[0], (np.asarray(POST[1][1][0]) + [.9, .05, .05]) / 2, atol=5e-7)
    assert yaml.safe_load(open(os.path.join(exp, "ens", "tag.yaml")))["ensemble_seeds"] == [1, 2]


@pytest.mark.parametrize("case, message", [
    ("unfinished", "fold.2/seed3: training not finished (no done)"),
    ("other_list", "fold.1/seed2/test_clean/predictions.tsv: not the utterances, labels and classes of"),
    ("one_seed", "an ensemble needs at least two members (seeds x experiments), not seed 1 of 'spec_densenet_none_aaaa' alone"),
    ("repeated_seed", "give distinct seeds, not 1 1"),
    ("not_ensemble", "exists and is not a seed ensemble: choose another --out-tag"),
    ("same_tag", "--out-tag 'spec_densenet_none_aaaa' is a member experiment"),
])
def test_refusals_exit_1_with_one_line_naming_the_problem(exp, case, message):
    args = ["--exp-dir", exp, "--out-tag", "ens", TAG]
    if case == "unfinished":
        os.unlink(os.path.join(exp, TAG, "fold.2", "seed3", "done"))
    elif case == "other_list":
        make_seed_run(exp, 1, 2, utts=["s1-a", "s1-b", "s1-x", "s1-d"])
    elif case == "one_seed":
        args = ["--exp-dir", exp, "--out-tag", "ens", "--seeds", "1", TAG]
    elif case == "repeated_seed":
        args = ["--exp-dir", exp, "--out-tag", "ens", "--seeds", "1 1", TAG]
    elif case == "not_ensemble":
        os.makedirs(os.path.join(exp, "ens", "fold.1"))
    elif case == "same_tag":
        args = ["--exp-dir", exp, "--out-tag", TAG, TAG]
    r = subprocess.run([sys.executable, "-m", "ser.bin.ensemble_seeds"] + args, capture_output=True, text=True)
    assert r.returncode == 1
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    if case != "not_ensemble":
        assert not os.path.exists(os.path.join(exp, "ens"))
    assert not [n for n in os.listdir(exp) if n.startswith(".ens.")]   # no half-built ensemble left


def test_seed_ensembles_of_different_seed_counts_fuse_with_one_weight_each(exp, tmp_path):
    # spec: an ensemble of seeds 1-3; mel: an ensemble of seed 1-2 (rotated posteriors); their fusion
    # averages the two ensembles' posteriors, not the five runs'
    for fold in POST:
        for seed in (1, 2):
            make_seed_run(exp, fold, seed, tag=MEL_TAG, feats="mel", post=mel_posteriors(fold, seed))
    assert ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "spec_ens", TAG]) == 0
    assert ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "mel_ens", MEL_TAG]) == 0
    assert ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "fused", "--seeds", "1", "spec_ens", "mel_ens"]) == 0
    for fold in POST:
        spec = np.mean([POST[fold][s] for s in (1, 2, 3)], axis=0)
        mel = np.mean([mel_posteriors(fold, s) for s in (1, 2)], axis=0)
        post = np.loadtxt(os.path.join(exp, "fused", f"fold.{fold}", "seed1", "test_clean", "predictions.tsv"),
                          skiprows=1, usecols=(3, 4, 5))
        np.testing.assert_allclose(post, (spec + mel) / 2, atol=2e-6)
    tag_yaml = yaml.safe_load(open(os.path.join(exp, "fused", "tag.yaml")))
    assert tag_yaml["ensemble_of"] == ["spec_ens", "mel_ens"] and tag_yaml["features"] == "spec + mel"
    assert tag_yaml["setting"] == "equal-weight mean posterior of 2 experiments, a seed ensemble counting as one"
    # a trained experiment still needs its runs' done: a seed without it is refused
    os.remove(os.path.join(exp, MEL_TAG, "fold.1", "seed2", "done"))
    r = subprocess.run([sys.executable, "-m", "ser.bin.ensemble_seeds", "--exp-dir", exp, "--out-tag", "f2",
                        "--seeds", "1 2", TAG, MEL_TAG], capture_output=True, text=True)
    assert r.returncode == 1 and "fold.1/seed2: training not finished (no done)" in r.stderr


def test_the_mean_posterior_of_a_selection_keeps_its_label(exp):
    """The seeds of a per-fold selection, averaged: the row says what was chosen and how."""
    from ser.bin import select_on_valid
    for fold in POST:
        for seed in POST[fold]:
            make_seed_run(exp, fold, seed, tag="spec_densenet_none_other")
    assert select_on_valid.main(["--exp-dir", exp, "--out-tag", "sel", TAG, "spec_densenet_none_other"]) == 0
    assert ensemble_seeds.main(["--exp-dir", exp, "--out-tag", "sel_mean", "sel"]) == 0
    setting = yaml.safe_load(open(os.path.join(exp, "sel_mean", "tag.yaml")))["setting"]
    assert setting == "chosen per fold on validation UAR; mean posterior of seeds 1 2 3"
