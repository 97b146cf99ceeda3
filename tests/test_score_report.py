"""score.py outputs against an independent numpy computation; report.py numbers on a synthetic tree."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from eval_helpers import CLASSES, make_model_dir, write_feats_dir, write_training_run
from ser.bin import report, score
from ser.errors import SerError
from ser.training.nbest import write_averaged

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- score ------------------------------------------------------------------------------------
def reference_posterior(model, mat, mean, std, length, shift):
    """Normalise, cut windows as the contract says, mean of softmax: written out independently."""
    x = (np.asarray(mat, np.float64) - mean) / std
    T = len(x)
    if T <= length:
        segs = [np.vstack([x, np.zeros((length - T, x.shape[1]))])]
    else:
        starts = list(range(0, T - length + 1, shift))
        if starts[-1] + length < T:
            starts.append(T - length)
        segs = [x[s:s + length] for s in starts]
    with torch.no_grad():
        logits = model(torch.tensor(np.stack(segs), dtype=torch.float32)).double()
    return torch.softmax(logits, -1).mean(0).numpy()


@pytest.fixture
def scored(tmp_path):
    rng = np.random.default_rng(3)
    dim = 16
    mean, std = rng.normal(size=dim), rng.uniform(0.5, 2.0, size=dim)
    model, meta = make_model_dir(str(tmp_path / "model"), dim, cmvn=(mean, std), seed=1)
    labels = ["anger"] * 6 + ["boredom"] * 4 + ["neutral"] * 3     # imbalanced
    utts = [f"{'03' if i < 7 else '08'}-u{i:02d}" for i in range(len(labels))]
    feats = {u: mean + std * (rng.normal(size=(int(rng.integers(12, 90)), dim)) + 2 * rng.normal(size=dim))
             for u in utts}
    write_feats_dir(str(tmp_path / "feats"), feats, dict(zip(utts, labels)), {u: u[:2] for u in utts})
    test_utts = utts[:12]
    with open(tmp_path / "test.list", "w") as f:
        f.writelines(u + "\n" for u in test_utts)
    out = tmp_path / "out"
    assert score.main(["--model-dir", str(tmp_path / "model"), "--feats-dir", str(tmp_path / "feats"),
                       "--utt-list", str(tmp_path / "test.list"), "--out", str(out), "--chunk", "5"]) == 0
    model.eval()
    ref = {u: reference_posterior(model, feats[u], mean, std, 32, 16) for u in test_utts}
    return out, test_utts, dict(zip(utts, labels)), ref


def test_score_metrics_equal_numpy_from_predictions(scored):
    out, test_utts, utt2emo, ref = scored
    with open(out / "predictions.tsv") as f:
        rows = [l.rstrip("\n").split("\t") for l in f]
    assert rows[0] == ["utt", "true", "pred"] + CLASSES
    rows = rows[1:]
    assert [r[0] for r in rows] == test_utts
    assert [r[1] for r in rows] == [utt2emo[u] for u in test_utts]
    post = np.array([[float(x) for x in r[3:]] for r in rows])
    np.testing.assert_allclose(post, np.stack([ref[u] for u in test_utts]), atol=1e-6)
    np.testing.assert_allclose(post.sum(1), 1.0, atol=1e-5)
    assert [r[2] for r in rows] == [CLASSES[i] for i in post.argmax(1)]
    t = np.array([CLASSES.index(r[1]) for r in rows])
    p = np.array([CLASSES.index(r[2]) for r in rows])
    assert len(set(p)) >= 2, "the tiny model should not predict a single class (weak test otherwise)"
    cm = np.zeros((3, 3), int)
    np.add.at(cm, (t, p), 1)
    recall = np.diag(cm) / cm.sum(1)
    with open(out / "metrics.json") as f:
        m = json.load(f)
    assert m["confusion"] == cm.tolist()
    assert m["uar"] == pytest.approx(recall.mean(), abs=1e-12)
    assert m["wa"] == pytest.approx((t == p).mean(), abs=1e-12)
    assert m["per_class_recall"] == pytest.approx(dict(zip(CLASSES, recall)), abs=1e-12)
    assert m["num_utts"] == 12 and m["classes"] == CLASSES and m["speakers"] == ["03", "08"]
    png = (out / "confusion.png").read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 1000
    assert (out / "done").exists()


def test_score_label_outside_model_classes(tmp_path):
    make_model_dir(str(tmp_path / "model"))
    feats = {"03-a": np.zeros((40, 16)), "03-b": np.ones((40, 16))}
    write_feats_dir(str(tmp_path / "feats"), feats, {"03-a": "anger", "03-b": "fear"})
    (tmp_path / "list").write_text("03-a\n03-b\n")
    args = ["--model-dir", str(tmp_path / "model"), "--feats-dir", str(tmp_path / "feats"),
            "--utt-list", str(tmp_path / "list"), "--out", str(tmp_path / "out")]
    r = subprocess.run([sys.executable, "-m", "ser.bin.score"] + args, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "utterance '03-b' has label 'fear'" in r.stderr and "utt2emo" in r.stderr
    assert not (tmp_path / "out" / "done").exists()
    (tmp_path / "list").write_text("03-a\n03-c\n")
    with pytest.raises(SerError, match="no label for utterance '03-c'"):
        score.main(args)


# --- report -----------------------------------------------------------------------------------
def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def make_run(exp, tag, fold, seed, cond, uar, wa, cm, model, epochs_time=(10.0, 20.5), done=True,
             speakers=None):
    run = os.path.join(exp, tag, f"fold.{fold}", f"seed{seed}")
    cdir = os.path.join(run, cond)
    write_json(os.path.join(cdir, "metrics.json"),
               {"uar": uar, "wa": wa, "confusion": cm, "classes": CLASSES, "num_utts": int(np.sum(cm)),
                "per_class_recall": {}, "speakers": speakers or [f"s{fold}"]})
    if done:
        open(os.path.join(cdir, "done"), "w").close()
    cfg = {"model": model, "max_epochs": 7, "mixup": {"enabled": False},
           "data": {"feats_dir": "data/all_spec", "fold_dir": f"data/folds/loso/{fold}"}, "seed": seed}
    write_training_run(run, cfg, [0.5] * len(epochs_time), epochs_time)


@pytest.fixture
def exp_tree(tmp_path):
    """cnn: 3 folds x 2 seeds (+ an incomplete seed 3); highway: 3 folds x 1 seed, two conditions."""
    recipe = tmp_path / "egs" / "emodb"
    exp = str(recipe / "exp")
    os.makedirs(recipe / "data" / "all_spec")
    (recipe / "data" / "all_spec" / "conf.yaml").write_text("type: spec\n")
    rng = np.random.default_rng(7)
    vals = {}
    for tag, model, seeds in (("cnn_spec_h1", "cnn", (1, 2)), ("hw_spec_h2", "densenet_lstm_highway", (1,))):
        for seed in seeds:
            for fold in (1, 2, 3):
                for cond in (("test_clean", "test_snr0") if tag.startswith("hw") else ("test_clean",)):
                    cm = rng.integers(0, 9, size=(3, 3)).tolist()
                    uar, wa = float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.3, 0.8))
                    vals[(tag, seed, fold, cond)] = (uar, wa, cm)
                    make_run(exp, tag, fold, seed, cond, uar, wa, cm, model)
    make_run(exp, "cnn_spec_h1", 1, 3, "test_clean", 0.99, 0.99, [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "cnn")
    make_run(exp, "cnn_spec_h1", 2, 3, "test_clean", 0.01, 0.01, [[0, 1, 0], [0, 0, 1], [1, 0, 0]], "cnn",
             done=False)
    return tmp_path, exp, vals


def table_row(text, section, label):
    """Cells of the row starting with `label` in the table under `## section`."""
    block = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in {section}:\n{block}")


def fmt(values_mean, values_std):
    return f"{100 * values_mean:.1f} ± {100 * values_std:.1f}"


def test_report_over_seeds_and_over_folds(exp_tree):
    tmp_path, exp, vals = exp_tree
    out = tmp_path / "RESULTS.md"
    assert report.main(["--exp-dir", exp, "--out", str(out), "--corpus-note", "EmoDB (2.0 s copy), 7 classes"]) == 0
    text = out.read_text()
    # cnn: per seed the mean over folds, then mean ± sample std (ddof=1) over seeds 1, 2 (3 is incomplete)
    seed_uar = [np.mean([vals[("cnn_spec_h1", s, f, "test_clean")][0] for f in (1, 2, 3)]) for s in (1, 2)]
    seed_wa = [np.mean([vals[("cnn_spec_h1", s, f, "test_clean")][1] for f in (1, 2, 3)]) for s in (1, 2)]
    # highway: one seed, mean ± sample std over folds
    hw = {c: [vals[("hw_spec_h2", 1, f, c)][0] for f in (1, 2, 3)] for c in ("test_clean", "test_snr0")}
    hw_wa = [vals[("hw_spec_h2", 1, f, "test_clean")][1] for f in (1, 2, 3)]
    assert table_row(text, "UAR (%)", "Model") == ["Model", "emodb test_clean", "emodb test_snr0"]
    assert table_row(text, "UAR (%)", "cnn (spec)") == [
        "cnn (spec)", fmt(np.mean(seed_uar), np.std(seed_uar, ddof=1)), "–"]
    assert table_row(text, "UAR (%)", "densenet_lstm_highway (spec)") == [
        "densenet_lstm_highway (spec)", fmt(np.mean(hw["test_clean"]), np.std(hw["test_clean"], ddof=1)) + " †",
        fmt(np.mean(hw["test_snr0"]), np.std(hw["test_snr0"], ddof=1)) + " †"]
    assert table_row(text, "WA (%)", "cnn (spec)")[1] == fmt(np.mean(seed_wa), np.std(seed_wa, ddof=1))
    assert table_row(text, "WA (%)", "densenet_lstm_highway (spec)")[1] == \
        fmt(np.mean(hw_wa), np.std(hw_wa, ddof=1)) + " †"
    assert "ddof=1" in text and "single repeat" in text
    # the rows are in paper order: cnn before the proposed model
    assert text.index("| cnn (spec) |") < text.index("| densenet_lstm_highway (spec) |")
    # per fold: fold 2's speaker, cnn UAR/WA averaged over the two seeds
    f2 = [vals[("cnn_spec_h1", s, 2, "test_clean")] for s in (1, 2)]
    row = table_row(text, "Per fold: emodb test_clean", "2")
    assert row[1] == "s2"
    assert row[2] == f"{100 * np.mean([v[0] for v in f2]):.1f} / {100 * np.mean([v[1] for v in f2]):.1f}"
    assert row[3] == f"{100 * hw['test_clean'][1]:.1f} / {100 * vals[('hw_spec_h2', 1, 2, 'test_clean')][1]:.1f}"
    # per-class recall from the confusion summed over the runs used
    cm = np.sum([vals[("cnn_spec_h1", s, f, "test_clean")][2] for s in (1, 2) for f in (1, 2, 3)], axis=0)
    rec = np.diag(cm) / cm.sum(1)
    assert table_row(text, "Per-class recall (%): emodb test_clean", "cnn (spec)")[1:] == \
        [f"{100 * r:.1f}" for r in rec]
    # models table: 6 runs x (10 + 20.5) s = 183 s; max epochs from config.yaml; 2 epochs per run
    row = table_row(text, "Models", "cnn (spec)")
    assert row[1:] == ["`cnn_spec_h1`", "emodb", "spec", "none", "7", "2.0", "3 × 2", "2 seeds", "3m03s", "30s"]
    assert table_row(text, "Models", "densenet_lstm_highway (spec)")[7:9] == ["3 × 1", "3 folds"]
    # protocol, commit, corpus note, confusion PNGs
    assert "EmoDB (2.0 s copy), 7 classes" in text and "3 folds" in text
    assert "Repeats (seeds): 2 (1, 2)." in text
    assert "Not counted (unfinished repeats): cnn (spec) emodb test_clean seed 3 (1 of 3 folds)." in text
    assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d from commit `unknown`", text)
    agg = os.path.join(exp, "cnn_spec_h1", "confusion_test_clean.png")
    with open(agg, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert "(egs/emodb/exp/cnn_spec_h1/confusion_test_clean.png)" in text


def test_report_single_seed_is_over_folds(exp_tree):
    tmp_path, exp, vals = exp_tree
    import shutil
    shutil.rmtree(os.path.join(exp, "cnn_spec_h1"))
    out = tmp_path / "sub" / "R.md"
    assert report.main(["--exp-dir", exp, "--out", str(out), "--title", "T", "--digits", "2"]) == 0
    text = out.read_text()
    assert text.startswith("# T\n")
    assert "mean ± std over folds (a single repeat): ± is the sample standard deviation (ddof=1)" in text
    assert "†" not in text
    u = [vals[("hw_spec_h2", 1, f, "test_snr0")][0] for f in (1, 2, 3)]
    assert table_row(text, "UAR (%)", "densenet_lstm_highway (spec)")[2] == \
        f"{100 * np.mean(u):.2f} ± {100 * np.std(u, ddof=1):.2f}"
    assert "(../egs/emodb/exp/hw_spec_h2/fold.1/seed1/test_clean/confusion.png)" not in text  # no per-run PNGs written
    assert "[all folds](../egs/emodb/exp/hw_spec_h2/confusion_test_clean.png)" in text


def test_protocol_names_the_fold_scheme(exp_tree, tmp_path):
    _, exp, _ = exp_tree
    out = tmp_path / "loso.md"
    assert report.main(["--exp-dir", exp, "--out", str(out)]) == 0
    text = out.read_text()
    assert "Leave-one-speaker-out, 3 folds (each tests on one speaker" in text
    assert "| Fold | Test speaker |" in text
    # folds of several test speakers each (RAVDESS's actor groups)
    groups = tmp_path / "groups" / "exp"
    for fold in (1, 2):
        make_run(str(groups), "cnn_spec_g", fold, 1, "test_clean", 0.5, 0.5, [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                 "cnn", speakers=[f"{2 * fold - 1:02d}", f"{2 * fold:02d}"])
    out = tmp_path / "groups.md"
    assert report.main(["--exp-dir", str(groups), "--out", str(out)]) == 0
    text = out.read_text()
    assert "Leave-one-speaker-out" not in text
    assert "Speaker-independent folds, 2 of them (each tests on 2 speakers" in text
    assert "UAR / WA (%) of each fold's test speakers." in text and "| Fold | Test speakers |" in text
    assert table_row(text, "Per fold: groups test_clean", "2")[1] == "03, 04"


def test_report_without_runs_is_an_error(tmp_path):
    os.makedirs(tmp_path / "exp" / "tag" / "fold.1" / "seed1" / "test_clean")
    with pytest.raises(SerError, match="no scored runs"):
        report.main(["--exp-dir", str(tmp_path / "exp"), "--out", str(tmp_path / "R.md")])
    assert not (tmp_path / "R.md").exists()


def test_notes_file_is_a_section_after_the_protocol(exp_tree, tmp_path):
    _, exp, _ = exp_tree
    notes = tmp_path / "results_note.md"
    notes.write_text("Why the proposed model trails:\n\n- it underfits (training loss 0.71).\n")
    out = tmp_path / "R.md"
    assert report.main(["--exp-dir", exp, "--out", str(out), "--notes", str(notes)]) == 0
    text = out.read_text()
    assert "\n## Notes\n\nWhy the proposed model trails:\n\n- it underfits (training loss 0.71).\n\n## " in text
    assert text.index("## Protocol") < text.index("## Notes") < text.index("## UAR (%)")
    out2 = tmp_path / "R2.md"
    assert report.main(["--exp-dir", exp, "--out", str(out2)]) == 0
    assert "## Notes" not in out2.read_text()
    with pytest.raises(SerError, match=r"--notes .*missing\.md: No such file"):
        report.main(["--exp-dir", exp, "--out", str(tmp_path / "R3.md"), "--notes", str(tmp_path / "missing.md")])
    assert not (tmp_path / "R3.md").exists()


def test_fit_table_from_the_selected_epoch_of_each_run(tmp_path):
    exp = str(tmp_path / "exp")
    cm = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    # (train_loss, valid_loss, valid_uar) per epoch; the first maximum of valid UAR is selected
    histories = {1: [(1.5, 1.4, 0.40), (1.0, 1.1, 0.70), (0.6, 1.3, 0.70), (0.3, 1.6, 0.65)],
                 2: [(1.2, 1.0, 0.50), (0.9, 0.9, 0.55), (0.8, 1.2, 0.60)]}
    for fold, hist in histories.items():
        make_run(exp, "cnn_spec_h1", fold, 1, "test_clean", 0.5, 0.5, cm, "cnn")
        with open(os.path.join(exp, "cnn_spec_h1", f"fold.{fold}", "seed1", "history.tsv"), "w") as f:
            f.write("epoch\tlr\ttrain_loss\tvalid_loss\tvalid_uar\tvalid_wa\ttime\n")
            for e, (tl, vl, u) in enumerate(hist, 1):
                f.write(f"{e}\t0.001\t{tl}\t{vl}\t{u}\t{u}\t1.0\n")
    out = tmp_path / "R.md"
    assert report.main(["--exp-dir", exp, "--out", str(out)]) == 0
    text = out.read_text()
    # fold 1: epoch 2 (1.0 / 1.1, UAR 70), lowest 0.3; fold 2: epoch 3 (0.8 / 1.2, UAR 60), lowest 0.8
    block = text.split("How the runs fitted", 1)[1]
    row = [c.strip() for c in block.split("\n| cnn (all_spec) |", 1)[1].split("\n", 1)[0].strip(" |").split("|")][1:]
    assert row == ["2.5", "65.0", "0.90", "1.15", "0.55", "2"]
    assert "means underfitting" in text and "‡" not in text
    # fold 2's model.pt averages its best epochs: its validation UAR and loss are the average's
    write_averaged(os.path.join(exp, "cnn_spec_h1", "fold.2", "seed1"), [3, 2], (1.0, 0.58, 0.6))
    assert report.main(["--exp-dir", exp, "--out", str(out)]) == 0
    block = out.read_text().split("How the runs fitted", 1)[1]
    row = [c.strip() for c in block.split("\n| cnn (all_spec) |", 1)[1].split("\n", 1)[0].strip(" |").split("|")][1:]
    assert row == ["2.5", "64.0 ‡", "0.90", "1.05 ‡", "0.55", "2"]
    assert "‡: the validation UAR and loss of the mean of each run's best epochs' weights" in block


def test_per_run_confusions_link_only_inside_the_checkout(exp_tree):
    """A report in this checkout links each run's matrix; a dated report of another checkout
    (results/<name>/ below its recipe) names the runs' dir instead of linking out of its tree."""
    tmp_path, exp, _ = exp_tree
    png = os.path.join(exp, "hw_spec_h2", "fold.1", "seed1", "test_clean", "confusion.png")
    with open(png, "wb") as f:
        f.write(PNG_MAGIC)
    here = tmp_path / "egs" / "emodb" / "RESULTS.md"
    assert report.main(["--exp-dir", exp, "--out", str(here)]) == 0
    assert "[1](exp/hw_spec_h2/fold.1/seed1/test_clean/confusion.png)" in here.read_text()
    dated = tmp_path / "main" / "egs" / "emodb" / "results" / "x" / "RESULTS.md"
    assert report.main(["--exp-dir", exp, "--out", str(dated), "--fig-dir", str(dated.parent / "figures")]) == 0
    text = dated.read_text()
    assert "seed1/test_clean/confusion.png)" not in text and "[1](" not in text
    assert f"stays in the checkout that ran it: `{os.path.join(exp, 'hw_spec_h2')}`." in text
    assert "[all folds](figures/emodb_hw_spec_h2_test_clean_confusion.png)" in text
