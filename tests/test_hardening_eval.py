"""Hardening (issue 15): unfinished trainings are not scored, partial tables are refused or marked,
and corrupt features give one-line errors naming the scp file, its line and the ark."""
import os
import subprocess
import sys

import numpy as np
import pytest

from eval_helpers import make_model_dir, write_feats_dir
from test_score_report import make_run
from training_toy import make_corpus
from ser.bin import report
from ser.errors import SerError
from ser.training.dataset import load_fold

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO)


@pytest.fixture
def unfinished(tmp_path):
    rng = np.random.default_rng(0)
    make_model_dir(str(tmp_path / "model"), 16)
    os.unlink(tmp_path / "model" / "done")   # killed during training: a best-so-far model.pt only
    utts = ["03-u1", "03-u2"]
    write_feats_dir(str(tmp_path / "feats"), {u: rng.normal(size=(40, 16)) for u in utts},
                    {u: "anger" for u in utts})
    (tmp_path / "test.list").write_text("".join(u + "\n" for u in utts))
    return tmp_path


@pytest.mark.parametrize("prog", [["ser.bin.score"], ["ser.bin.score_attack", "--attack", "fgsm"]])
def test_scoring_refuses_an_unfinished_training(unfinished, prog):
    t = unfinished
    args = [*prog, "--model-dir", str(t / "model"), "--feats-dir", str(t / "feats"),
            "--utt-list", str(t / "test.list"), "--out", str(t / "out")]
    r = run_module(*args)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert f"--model-dir {t / 'model'} has no done" in r.stderr and "--allow-unfinished" in r.stderr
    assert not (t / "out").exists()
    r = run_module(*args, "--allow-unfinished")
    assert r.returncode == 0, r.stderr
    assert (t / "out" / "metrics.json").exists() and (t / "out" / "done").exists()


def partial_tree(tmp_path):
    recipe = tmp_path / "egs" / "emodb"
    exp = str(recipe / "exp")
    for k in (1, 2, 3, 4):
        os.makedirs(recipe / "data" / "folds" / "loso" / str(k))
        (recipe / "data" / "folds" / "loso" / str(k) / "test.list").write_text(f"s{k}-u1\n")
    for k in (1, 2):   # stage 4 scored 2 of the 4 folds
        make_run(exp, "cnn_spec_h1", k, 1, "test_clean", 0.2 + k / 100, 0.3, [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "cnn")
    return recipe, exp


def test_report_refuses_missing_folds_unless_allowed_and_then_marks_the_row(tmp_path, monkeypatch):
    recipe, exp = partial_tree(tmp_path)
    monkeypatch.chdir(recipe)
    out = str(recipe / "RESULTS.md")
    with pytest.raises(SerError, match=r"cnn_spec_h1: test_clean: folds 3 4 of 4 not scored .*--allow-partial"):
        report.main(["--exp-dir", exp, "--out", out])
    assert not os.path.exists(out)
    assert report.main(["--exp-dir", exp, "--out", out, "--allow-partial"]) == 0
    rows = [l for l in open(out) if l.startswith("| cnn")]
    assert all("(partial: 2 of 4 folds)" in l for l in rows[:2]), rows   # the UAR and WA tables


def corrupt(tmp_path, how):
    corpus = make_corpus(str(tmp_path))
    scp = os.path.join(corpus["data"], "feats.scp")
    ark = os.path.join(corpus["data"], "feats.ark")
    spk2utt = {}
    for u, k in sorted(corpus["utt2spk"].items()):
        spk2utt.setdefault(k, []).append(u)
    with open(os.path.join(corpus["data"], "spk2utt"), "w") as f:
        f.writelines(f"{k} {' '.join(us)}\n" for k, us in sorted(spk2utt.items()))
    lines = open(scp).read().splitlines()
    bad = 5 if how != "truncate" else len(lines) - 1
    utt, spec = lines[bad].split()
    if how == "truncate":
        with open(ark, "rb+") as f:
            f.truncate(os.path.getsize(ark) // 2)
        bad = next(i for i, l in enumerate(lines) if int(l.split(":")[-1]) > os.path.getsize(ark))
        utt = lines[bad].split()[0]
    else:
        path, off = spec.rsplit(":", 1)
        lines[bad] = f"{utt} {path}:{int(off) + int(how)}"
        open(scp, "w").write("\n".join(lines) + "\n")
    return corpus, scp, ark, bad + 1, utt


@pytest.mark.parametrize("how", ["30", "1000", "truncate"])
def test_corrupt_features_name_scp_line_and_ark(tmp_path, how):
    corpus, scp, ark, line, utt = corrupt(tmp_path, how)
    # the fold reads every train/valid matrix; make sure the bad one is among them
    if utt in corpus["lists"]["test"]:
        pytest.skip("corrupted a test utterance")
    with pytest.raises(SerError) as e:
        load_fold(corpus["data"], corpus["fold"], corpus["classes"])
    msg = str(e.value)
    assert "\n" not in msg and f"{scp}:" in msg and ark in msg, msg
    # validate_data_dir.py --full reads every matrix (the default only the first and last)
    validate = [sys.executable, os.path.join(REPO, "utils", "validate_data_dir.py"), "--no-wav"]
    r = subprocess.run(validate + ["--full", corpus["data"]], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and f"{scp}:" in r.stderr and ark in r.stderr, r.stderr
    assert how == "truncate" or f"{scp}:{line}:" in r.stderr
    if how == "30":  # a middle line: only --full reads it
        assert subprocess.run(validate + [corpus["data"]], capture_output=True).returncode == 0


def test_training_program_reports_a_moved_offset_in_one_line(tmp_path):
    corpus, scp, ark, line, utt = corrupt(tmp_path, "1000")
    r = run_module("ser.bin.train", "--config", os.path.join(REPO, "egs", "TEMPLATE", "conf", "train_cnn.yaml"),
                   "--feats-dir", corpus["data"], "--fold-dir", corpus["fold"], "--classes", corpus["classes"],
                   "--outdir", str(tmp_path / "exp"), "--max-epochs", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    err = [l for l in r.stderr.splitlines() if "error" in l]
    assert len(err) == 1 and f"{scp}:{line}: cannot read features of '{utt}'" in err[0] and ark in err[0], r.stderr


@pytest.mark.parametrize("prog", [["ser.bin.score"], ["ser.bin.score_attack", "--attack", "fgsm"]])
def test_scoring_refuses_features_of_another_config_than_the_models(tmp_path, prog):
    # features recomputed with another config in the same dir (same dimension): the model's
    # weights and normalisation statistics belong to the features it was trained on
    rng = np.random.default_rng(0)
    make_model_dir(str(tmp_path / "model"), 16, feat_conf={"type": "spec", "num_bins": 16, "hop_length": 160})
    utts = ["03-u1", "03-u2"]
    feats = tmp_path / "feats"
    write_feats_dir(str(feats), {u: rng.normal(size=(40, 16)) for u in utts}, {u: "anger" for u in utts})
    (tmp_path / "test.list").write_text("".join(u + "\n" for u in utts))
    args = [*prog, "--model-dir", str(tmp_path / "model"), "--feats-dir", str(feats),
            "--utt-list", str(tmp_path / "test.list")]
    # the same config, other comments and key order: scored
    (feats / "conf.yaml").write_text("# log spectrogram\nhop_length: 160\ntype: spec\nnum_bins: 16\n")
    r = run_module(*args, "--out", str(tmp_path / "same"))
    assert r.returncode == 0, r.stderr
    (feats / "conf.yaml").write_text("type: spec\nnum_bins: 16\nhop_length: 256\n")
    r = run_module(*args, "--out", str(tmp_path / "other"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert (f"{feats / 'conf.yaml'}: hop_length is 256, but {tmp_path / 'model' / 'model.pt'} was trained on "
            "features with 160") in r.stderr
    assert not (tmp_path / "other").exists()


def test_training_copies_of_another_feature_config_are_refused(tmp_path):
    # speed-perturbed copies or a diffusion model's samples made before the training features were
    # recomputed with another config must not be mixed with them (same dimension: no other error)
    from training_toy import make_aug_dir
    corpus = make_corpus(str(tmp_path))
    aug, _ = make_aug_dir(str(tmp_path), "aug", corpus, corpus["lists"]["train"])
    with open(os.path.join(aug, "conf.yaml"), "w") as f:
        f.write("# the same config\ndim: 16\ntype: toy\n")
    fold = load_fold(corpus["data"], corpus["fold"], corpus["classes"], [aug])
    assert len(fold.train) == 2 * len(corpus["lists"]["train"])
    with open(os.path.join(aug, "conf.yaml"), "w") as f:
        f.write("type: toy\ndim: 32\n")
    data_conf = os.path.join(corpus["data"], "conf.yaml")
    with pytest.raises(SerError, match=rf"^{aug}/conf.yaml: dim is 32, but the training features {data_conf} "
                                       r"have 16: the copies were made with another feature config"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], [aug])
    with pytest.raises(SerError, match=rf"^{aug}/conf.yaml: dim is 32"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], synthetic_dirs=[aug])


@pytest.mark.parametrize("case", ["directory_for_a_file", "file_in_the_way"])
def test_file_system_errors_are_one_line_naming_the_path(tmp_path, case):
    """A directory given where a file is read, or a file where an output directory must go: the
    program's one-line error names the path and the reason (no traceback)."""
    (tmp_path / "a_file").write_text("x\n")
    target = tmp_path if case == "directory_for_a_file" else tmp_path / "a_file" / "out.txt"
    code = ("import sys; from ser.errors import run_main\n"
            f"def main(argv):\n    open({str(target)!r}, {'r' if case == 'directory_for_a_file' else 'w'!r})\n"
            "run_main(main)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=REPO))
    reason = "Is a directory" if case == "directory_for_a_file" else "Not a directory"
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"ser: error: {target}: {reason}"]


@pytest.mark.parametrize("prog, option, value, low", [
    ("ser.bin.score", "--batch-size", "0", 1), ("ser.bin.score", "--chunk", "0", 1),
    ("ser.bin.score", "--ngpu", "-1", 0), ("ser.bin.infer", "--digits", "-1", 0),
    ("ser.bin.report", "--digits", "x", 0), ("ser.bin.train", "--max-epochs", "0", 1),
    ("ser.bin.generate", "--batch-size", "0", 1), ("ser.bin.score_attack", "--steps", "0", 1),
])
def test_numeric_options_out_of_range_are_refused_by_name(prog, option, value, low):
    """Refused while parsing, before any input is read (the other arguments do not exist)."""
    r = run_module(prog, option, value)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].endswith(
        f"error: argument {option}: must be an integer >= {low}, got '{value}'")
