"""Per-fold selection between experiments by validation UAR (ser.bin.select_on_valid), and how the
report labels rows of one model that differ only in their config."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ser.bin import report, select_on_valid
from ser.errors import SerError
from ser.eval.aggregate import collect_runs
from eval_helpers import write_training_run

CLASSES = ["ang", "neu", "sad"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_run(exp, tag, fold, valid_curve, test_uar, label_smoothing, fold_dir=None, done=True,
             augmentation=None, synthetic_dir=None):
    """A finished training (config.yaml, history.tsv, done) with a scored test_clean condition."""
    run = os.path.join(exp, tag, f"fold.{fold}", "seed1")
    cond = os.path.join(run, "test_clean")
    os.makedirs(cond)
    cfg = {"model": "densenet", "max_epochs": 9, "label_smoothing": label_smoothing, "optim": {"lr": 0.001},
           "mixup": {"enabled": False}, "seed": 1,
           "data": {"feats_dir": "data/all_spec", "fold_dir": fold_dir or f"data/all_folds/{fold}"}}
    if augmentation:
        cfg["augmentation"] = augmentation
    if synthetic_dir:
        cfg["data"].update(train_source="both", synthetic_dirs=[synthetic_dir])
    write_training_run(run, cfg, valid_curve, [3.0] * len(valid_curve))
    if done:
        open(os.path.join(run, "done"), "w").close()
    cm = [[3, 1, 0], [0, 4, 0], [1, 0, 3]]
    with open(os.path.join(cond, "metrics.json"), "w") as f:
        json.dump({"uar": test_uar, "wa": test_uar, "confusion": cm, "classes": CLASSES, "num_utts": 12,
                   "per_class_recall": {}, "speakers": [f"s{fold}"]}, f)
    open(os.path.join(cond, "done"), "w").close()


# fold -> (valid curve, test UAR) of the plain and the smoothed candidate
PLAIN = {1: ([0.5, 0.7, 0.6], 0.61), 2: ([0.4, 0.6], 0.52), 3: ([0.55, 0.65], 0.70)}
SMOOTH = {1: ([0.6, 0.65], 0.80), 2: ([0.5, 0.75, 0.7], 0.58), 3: ([0.65, 0.5], 0.40)}


@pytest.fixture
def exp(tmp_path):
    exp = str(tmp_path / "all")          # feats dirs resolve against the exp dir's parent
    os.makedirs(tmp_path / "data" / "all_spec")
    (tmp_path / "data" / "all_spec" / "conf.yaml").write_text("type: spec\n")
    for fold in PLAIN:
        make_run(exp, "spec_densenet_none_aaaa", fold, *PLAIN[fold], label_smoothing=0.0)
        make_run(exp, "spec_densenet_none_bbbb", fold, *SMOOTH[fold], label_smoothing=0.1)
    return exp


def test_each_fold_takes_the_candidate_with_the_best_validation_uar(exp, capsys):
    assert select_on_valid.main(["--exp-dir", exp, "--out-tag", "sel",
                                 "spec_densenet_none_aaaa", "spec_densenet_none_bbbb"]) == 0
    # best valid UAR per fold: plain 0.7 / 0.6 / 0.65, smoothed 0.65 / 0.75 / 0.65 (a tie: plain)
    expected = {1: "spec_densenet_none_aaaa", 2: "spec_densenet_none_bbbb", 3: "spec_densenet_none_aaaa"}
    for fold, tag in expected.items():
        for entry in ("config.yaml", "history.tsv", "done", "test_clean"):
            link = os.path.join(exp, "sel", f"fold.{fold}", "seed1", entry)
            assert os.path.islink(link) and not os.path.isabs(os.readlink(link))
            assert os.path.realpath(link) == os.path.realpath(os.path.join(exp, tag, f"fold.{fold}", "seed1", entry))
    lines = open(os.path.join(exp, "sel", "selection.tsv")).read().splitlines()
    assert lines[0].split("\t") == ["fold", "seed", "valid_uar:spec_densenet_none_aaaa",
                                    "valid_uar:spec_densenet_none_bbbb", "chosen"]
    assert lines[2].split("\t") == ["2", "1", "0.6000", "0.7500", "spec_densenet_none_bbbb"]
    tag_yaml = yaml.safe_load(open(os.path.join(exp, "sel", "tag.yaml")))
    assert tag_yaml["differences"] == {"label_smoothing": [0.0, 0.1]}
    out = capsys.readouterr().out
    assert "spec_densenet_none_aaaa (label_smoothing 0.0): mean valid UAR 65.0, chosen in 2 of 3 runs" in out
    # per-fold differences -0.05, +0.15, 0: mean +3.3, standard error sqrt(0.02167 / 2 / 3) = 6.0 points
    assert ("spec_densenet_none_bbbb (label_smoothing 0.1): mean valid UAR 68.3, chosen in 1 of 3 runs; "
            "against spec_densenet_none_aaaa, paired: +3.3 ± 6.0 (better in 1 of 3)") in out

    # the report reads the selection as a row of its own, mean over folds of the chosen runs' test UAR
    results = os.path.join(os.path.dirname(exp), "RESULTS.md")
    assert report.main(["--exp-dir", exp, "--out", results]) == 0
    text = open(results).read()
    chosen_test = [PLAIN[1][1], SMOOTH[2][1], PLAIN[3][1]]
    sel_cell = f"{100 * np.mean(chosen_test):.1f} ± {100 * np.std(chosen_test, ddof=1):.1f}"
    row = [ln for ln in text.splitlines() if ln.startswith("| densenet (spec; chosen per fold on validation UAR)")]
    assert row and sel_cell in row[0]
    # the two candidates are told apart by the setting they differ in, not by their hashes
    assert any(ln.startswith("| densenet (spec; label_smoothing 0.1) |") for ln in text.splitlines())
    assert any(ln.startswith("| densenet (spec; label_smoothing 0.0) |") for ln in text.splitlines())


def test_candidates_that_differ_in_training_data_are_labelled_by_it(tmp_path, capsys):
    """Real against real + synthetic: the augmentation tells them apart; two real + synthetic
    candidates from diffusion models trained for different numbers of steps: that number does."""
    exp = str(tmp_path / "egs" / "emodb" / "exp" / "all4")
    for steps in (3000, 8000):
        model_dir = os.path.join(exp, f"diffusion_{steps}", "fold.1")
        os.makedirs(os.path.join(model_dir, "syn_s50_n1"))
        with open(os.path.join(model_dir, "config.yaml"), "w") as f:
            yaml.safe_dump({"max_steps": steps, "optim": {"lr": 0.001}, "data": {"fold_dir": "x"}}, f)
        with open(os.path.join(model_dir, "syn_s50_n1", "synthetic.yaml"), "w") as f:
            yaml.safe_dump({"model_dir": model_dir, "sampling_steps": 50, "num_per_combination": 1}, f)
        for fold in PLAIN:
            make_run(exp, f"mel_cnn_blstm_real_syn_{steps}", fold, *SMOOTH[fold], label_smoothing=0.0,
                     augmentation="real+syn", synthetic_dir=f"exp/all4/diffusion_{steps}/fold.1/syn_s50_n1")
    for fold in PLAIN:
        make_run(exp, "mel_cnn_blstm_none_1", fold, *PLAIN[fold], label_smoothing=0.0, augmentation="none")

    select_on_valid.main(["--exp-dir", exp, "--out-tag", "sel", "mel_cnn_blstm_none_1", "mel_cnn_blstm_real_syn_8000"])
    out = capsys.readouterr().out
    assert "mel_cnn_blstm_none_1 (augmentation none): mean valid UAR 65.0" in out
    assert "mel_cnn_blstm_real_syn_8000 (augmentation real+syn): mean valid UAR 68.3" in out
    tag_yaml = yaml.safe_load(open(os.path.join(exp, "sel", "tag.yaml")))
    assert tag_yaml["differences"] == {"augmentation": ["none", "real+syn"]}

    select_on_valid.main(["--exp-dir", exp, "--out-tag", "sel2",
                          "mel_cnn_blstm_real_syn_3000", "mel_cnn_blstm_real_syn_8000"])
    out = capsys.readouterr().out
    assert "mel_cnn_blstm_real_syn_3000 (diffusion.max_steps 3000): mean valid UAR 68.3" in out
    assert "mel_cnn_blstm_real_syn_8000 (diffusion.max_steps 8000): mean valid UAR 68.3" in out


def test_a_rerun_replaces_the_selection(exp):
    args = ["--exp-dir", exp, "--out-tag", "sel", "spec_densenet_none_aaaa", "spec_densenet_none_bbbb"]
    select_on_valid.main(args)
    hist = os.path.join(exp, "spec_densenet_none_bbbb", "fold.3", "seed1", "history.tsv")
    with open(hist, "a") as f:
        f.write("3\t0.001\t0.5\t0.9\t0.9\t0.9\t3.0\n")
    select_on_valid.main(args)
    assert os.path.realpath(os.path.join(exp, "sel", "fold.3", "seed1", "history.tsv")).endswith(
        os.path.join("spec_densenet_none_bbbb", "fold.3", "seed1", "history.tsv"))
    assert sorted(os.listdir(exp)) == ["sel", "spec_densenet_none_aaaa", "spec_densenet_none_bbbb"]
    # a selection left half-written by a killed run (a hidden dir) is not read as an experiment
    shutil.copytree(os.path.join(exp, "sel"), os.path.join(exp, ".sel.x1y2"), symlinks=True)
    assert {r.tag for r in collect_runs(exp)} == {"sel", "spec_densenet_none_aaaa", "spec_densenet_none_bbbb"}


@pytest.mark.parametrize("case, message", [
    ("unfinished", "did not finish the same runs: fold 2 seed 1 is finished in only one of them"),
    ("fold_dir", "fold 1 seed 1: the candidates trained on different fold dirs"),
    ("out_is_candidate", "--out-tag 'spec_densenet_none_aaaa' is one of the candidates"),
    ("foreign_out", "exists and is not a selection (no selection.tsv)"),
    ("one_candidate", "give at least two distinct candidate tags"),
    ("missing", "candidate 'nope': no directory"),
])
def test_refusals_name_the_problem(exp, case, message):
    candidates = ["spec_densenet_none_aaaa", "spec_densenet_none_cccc"]
    out = "sel"
    if case == "unfinished":
        for fold in PLAIN:
            make_run(exp, "spec_densenet_none_cccc", fold, *PLAIN[fold], label_smoothing=0.2, done=fold != 2)
    elif case == "fold_dir":
        for fold in PLAIN:
            make_run(exp, "spec_densenet_none_cccc", fold, *PLAIN[fold], label_smoothing=0.2,
                     fold_dir=f"data/other_folds/{fold}")
    elif case == "out_is_candidate":
        candidates[1], out = "spec_densenet_none_bbbb", "spec_densenet_none_aaaa"
    elif case == "foreign_out":
        candidates[1] = "spec_densenet_none_bbbb"
        os.makedirs(os.path.join(exp, "sel"))
    elif case == "one_candidate":
        candidates = candidates[:1]
    elif case == "missing":
        candidates[1] = "nope"
    with pytest.raises(SerError, match=re.escape(message)):
        select_on_valid.main(["--exp-dir", exp, "--out-tag", out] + candidates)
    assert not os.path.exists(os.path.join(exp, "sel", "selection.tsv"))


def test_the_program_exits_1_with_a_one_line_message(exp):
    r = subprocess.run([sys.executable, "-m", "ser.bin.select_on_valid", "--exp-dir", exp, "--out-tag", "sel",
                        "spec_densenet_none_aaaa", "nope"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"select_on_valid.py: error: candidate 'nope': no directory {exp}/nope"]


def test_refresh_redoes_a_selection_from_its_tag_yaml(exp, capsys):
    select_on_valid.main(["--exp-dir", exp, "--out-tag", "sel", "spec_densenet_none_aaaa", "spec_densenet_none_bbbb"])
    hist = os.path.join(exp, "spec_densenet_none_bbbb", "fold.1", "seed1", "history.tsv")
    with open(hist, "a") as f:
        f.write("3\t0.001\t0.5\t0.9\t0.95\t0.95\t3.0\n")
    assert select_on_valid.main(["--refresh", os.path.join(exp, "sel")]) == 0
    lines = open(os.path.join(exp, "sel", "selection.tsv")).read().splitlines()
    assert lines[1].split("\t") == ["1", "1", "0.7000", "0.9500", "spec_densenet_none_bbbb"]
    assert "chosen in 2 of 3 runs" in capsys.readouterr().out
    with pytest.raises(SerError, match="--refresh DIR takes no --exp-dir"):
        select_on_valid.main(["--refresh", os.path.join(exp, "sel"), "--exp-dir", exp])
    with pytest.raises(SerError, match="not a selection"):
        select_on_valid.main(["--refresh", os.path.join(exp, "spec_densenet_none_aaaa")])
    with pytest.raises(SerError, match="give --exp-dir with the candidate tags"):
        select_on_valid.main(["spec_densenet_none_aaaa", "spec_densenet_none_bbbb"])


def test_without_out_tag_the_candidates_are_compared_and_nothing_is_written(exp, capsys):
    # a validation grid: runs trained by stage 3 alone have no test condition
    for tag in ("spec_densenet_none_aaaa", "spec_densenet_none_bbbb"):
        for fold in PLAIN:
            shutil.rmtree(os.path.join(exp, tag, f"fold.{fold}", "seed1", "test_clean"))
    before = sorted(os.listdir(exp))
    assert select_on_valid.main(["--exp-dir", exp, "spec_densenet_none_aaaa", "spec_densenet_none_bbbb"]) == 0
    assert sorted(os.listdir(exp)) == before
    assert capsys.readouterr().out.splitlines() == [
        "select_on_valid: spec_densenet_none_aaaa (label_smoothing 0.0): mean valid UAR 65.0, chosen in 2 of 3 runs",
        "select_on_valid: spec_densenet_none_bbbb (label_smoothing 0.1): mean valid UAR 68.3, chosen in 1 of 3 runs; "
        "against spec_densenet_none_aaaa, paired: +3.3 ± 6.0 (better in 1 of 3)"]


def test_seeds_compare_the_runs_every_candidate_has(exp, capsys):
    # the second candidate got a seed 2 afterwards (its test run): all runs no longer pair up
    run = os.path.join(exp, "spec_densenet_none_bbbb", "fold.1")
    shutil.copytree(os.path.join(run, "seed1"), os.path.join(run, "seed2"))
    tags = ["spec_densenet_none_aaaa", "spec_densenet_none_bbbb"]
    with pytest.raises(SerError, match="fold 1 seed 2 is finished in only one of them"):
        select_on_valid.main(["--exp-dir", exp] + tags)
    assert select_on_valid.main(["--exp-dir", exp, "--seeds", "1"] + tags) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(
        "mean valid UAR 68.3, chosen in 1 of 3 runs; against spec_densenet_none_aaaa, paired: +3.3 ± 6.0 (better in 1 of 3)")
    with pytest.raises(SerError, match="no finished training of seed"):
        select_on_valid.main(["--exp-dir", exp, "--seeds", "3"] + tags)
    with pytest.raises(SerError, match="--seeds only compares"):
        select_on_valid.main(["--exp-dir", exp, "--out-tag", "sel", "--seeds", "1"] + tags)


def test_a_condition_is_linked_only_where_every_candidate_scored_it(exp):
    """fold 1 chooses the plain run; a condition only it has scored is left out of the selection."""
    for tag, folds in (("spec_densenet_none_aaaa", (1, 2)), ("spec_densenet_none_bbbb", (2,))):
        for fold in folds:
            cond = os.path.join(exp, tag, f"fold.{fold}", "seed1", "test_fgsm")
            shutil.copytree(os.path.join(os.path.dirname(cond), "test_clean"), cond)
    select_on_valid.main(["--exp-dir", exp, "--out-tag", "sel", "spec_densenet_none_aaaa", "spec_densenet_none_bbbb"])
    assert sorted(os.listdir(os.path.join(exp, "sel", "fold.1", "seed1"))) == [
        "config.yaml", "done", "history.tsv", "test_clean"]
    assert "test_fgsm" in os.listdir(os.path.join(exp, "sel", "fold.2", "seed1"))


def test_rows_of_one_setting_on_two_corpora_share_a_table_row(tmp_path):
    """The same setting on two corpora is one row with both columns, even when a second setting of
    the model on one corpus needs the config difference in its label."""
    exps = {}
    for corpus in ("all", "all4"):
        exps[corpus] = str(tmp_path / corpus)
        os.makedirs(tmp_path / "data" / "all_spec", exist_ok=True)
        (tmp_path / "data" / "all_spec" / "conf.yaml").write_text("type: spec\n")
        make_run(exps[corpus], f"spec_densenet_none_{corpus}", 1, [0.5], 0.6 if corpus == "all" else 0.7, 0.0)
    make_run(exps["all"], "spec_densenet_none_smooth", 1, [0.5], 0.5, 0.1)
    out = str(tmp_path / "R.md")
    assert report.main(["--exp-dir", exps["all"], "--exp-dir", exps["all4"], "--out", out]) == 0
    uar = open(out).read().split("## UAR (%)", 1)[1].split("\n## ", 1)[0]
    assert "| densenet (spec; label_smoothing 0.0) | 60.0 | 70.0 |" in uar
    assert "| densenet (spec; label_smoothing 0.1) | 50.0 | – |" in uar


def write_fold_info(exp, valid_of):
    """info.yaml of fold k: test speaker s<k>, validation speaker s<valid_of[k]>."""
    for fold, valid in valid_of.items():
        d = os.path.join(os.path.dirname(exp), "data", "all_folds", str(fold))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "info.yaml"), "w") as f:
            yaml.safe_dump({"fold": fold, "test_speakers": [f"s{fold}"], "valid_speakers": [f"s{valid}"]}, f)


def test_pooled_rule_leaves_out_the_runs_that_validate_on_the_folds_test_speaker(exp, capsys):
    write_fold_info(exp, {1: 2, 2: 3, 3: 1})
    tags = ["spec_densenet_none_aaaa", "spec_densenet_none_bbbb"]
    assert select_on_valid.main(["--exp-dir", exp, "--out-tag", "pooled", "--rule", "pooled"] + tags) == 0
    # best valid UAR per fold: plain 0.70 / 0.60 / 0.65, smoothed 0.65 / 0.75 / 0.65.
    # fold 1 (tests s1) leaves out fold 3 (validates on s1): plain (0.70 + 0.60) / 2, smoothed (0.65 + 0.75) / 2
    # fold 2 leaves out fold 1: plain (0.60 + 0.65) / 2, smoothed (0.75 + 0.65) / 2
    # fold 3 leaves out fold 2: plain (0.70 + 0.65) / 2, smoothed (0.65 + 0.65) / 2
    pooled = {1: (0.65, 0.70), 2: (0.625, 0.70), 3: (0.675, 0.65)}
    lines = [ln.split("\t") for ln in open(os.path.join(exp, "pooled", "selection.tsv")).read().splitlines()]
    assert lines[0] == ["fold", "seed"] + [f"valid_uar:{t}" for t in tags] + [f"pooled_valid_uar:{t}" for t in tags] + ["chosen"]
    for fold, (plain, smooth) in pooled.items():
        row = lines[fold]
        assert row[:2] == [str(fold), "1"] and [float(v) for v in row[4:6]] == pytest.approx([plain, smooth])
        assert row[6] == tags[int(smooth > plain)]
        link = os.path.join(exp, "pooled", f"fold.{fold}", "seed1", "test_clean")
        assert os.path.realpath(link) == os.path.realpath(os.path.join(exp, row[6], f"fold.{fold}", "seed1", "test_clean"))
    # smoothed / smoothed / plain, where the per-fold rule takes plain / smoothed / plain
    assert [ln[6] for ln in lines[1:]] == ["spec_densenet_none_bbbb", "spec_densenet_none_bbbb", "spec_densenet_none_aaaa"]
    tag_yaml = yaml.safe_load(open(os.path.join(exp, "pooled", "tag.yaml")))
    assert tag_yaml["rule"] == "pooled" and tag_yaml["selected_from"] == tags
    assert "spec_densenet_none_bbbb (label_smoothing 0.1): mean valid UAR 68.3, chosen in 2 of 3 runs" in capsys.readouterr().out

    # --refresh keeps the rule; the report names it in the row
    assert select_on_valid.main(["--refresh", os.path.join(exp, "pooled")]) == 0
    assert "chosen in 2 of 3 runs" in capsys.readouterr().out.splitlines()[1]
    results = os.path.join(os.path.dirname(exp), "RESULTS.md")
    assert report.main(["--exp-dir", exp, "--out", results]) == 0
    chosen_test = [SMOOTH[1][1], SMOOTH[2][1], PLAIN[3][1]]
    row = [ln for ln in open(results).read().splitlines()
           if ln.startswith("| densenet (spec; chosen per fold on pooled validation UAR, its test speakers left out)")]
    assert row and f"{100 * np.mean(chosen_test):.1f} ± {100 * np.std(chosen_test, ddof=1):.1f}" in row[0]


def test_pooled_rule_refusals(exp):
    tags = ["spec_densenet_none_aaaa", "spec_densenet_none_bbbb"]
    with pytest.raises(SerError, match=r"all_folds/1/info.yaml: no test_speakers \(a pooled selection needs them\)"):
        select_on_valid.main(["--exp-dir", exp, "--rule", "pooled"] + tags)
    write_fold_info(exp, {1: 1, 2: 1, 3: 1})      # every run validates on s1, which fold 1 tests
    with pytest.raises(SerError, match="fold 1: every run validates on one of its test speakers"):
        select_on_valid.main(["--exp-dir", exp, "--rule", "pooled"] + tags)
    with pytest.raises(SerError, match="--refresh DIR takes no --exp-dir, --out-tag, --seeds, --rule"):
        select_on_valid.main(["--refresh", os.path.join(exp, "x"), "--rule", "pooled"])


def test_a_history_cell_that_is_not_a_number_is_named(exp):
    hist = os.path.join(exp, "spec_densenet_none_bbbb", "fold.2", "seed1", "history.tsv")
    with open(hist, "a") as f:
        f.write("4\t0.001\t0.5\t0.9\tnan?\t0.9\t3.0\n")
    with pytest.raises(SerError, match=re.escape(f"{hist}:5: not a number: valid_uar='nan?'")):
        select_on_valid.main(["--exp-dir", exp, "spec_densenet_none_aaaa", "spec_densenet_none_bbbb"])
