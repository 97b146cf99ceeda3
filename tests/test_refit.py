"""Refit runs (ser.training.refit, `ser.bin.train --refit-from`): the plan read from the source's
history, the fold's validation speakers joining training (and nothing of the test speaker), the
replayed learning rates and epoch count, the source checks, resumption, and the config hash."""
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from ser.errors import SerError
from ser.eval.fit import run_fit
from ser.runtime.checkpoint import seed_everything
from ser.training import refit as R
from ser.training.dataset import load_fold, prepare
from ser.training.model_io import load_model, read_model_file
from ser.training.trainer import Trainer

from test_train_program import CONFIG
from test_training import small_config
from training_toy import CLASSES, DIM, TinyNet, make_aug_dir, make_corpus

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_run(d, lrs, uars, done=True):
    os.makedirs(d, exist_ok=True)
    rows = ["epoch\tlr\ttrain_loss\tvalid_loss\tvalid_uar\tvalid_wa\ttime"]
    rows += [f"{e}\t{lr}\t1.0\t1.0\t{u}\t{u}\t2.0" for e, (lr, u) in enumerate(zip(lrs, uars), 1)]
    with open(os.path.join(d, "history.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    if done:
        with open(os.path.join(d, "done"), "w") as f:
            f.write("best_epoch 4\n")
    return d


def test_plan_is_the_first_best_epoch_and_its_learning_rates(tmp_path):
    lrs = [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    src = write_run(str(tmp_path / "a"), lrs, [0.3, 0.5, 0.5, 0.6, 0.6, 0.4])
    plan = R.refit_plan(src)
    assert (plan.epochs, plan.lrs, plan.valid_uar) == (4, lrs[:4], 0.6)   # epoch 5 ties: the earlier stays
    # epochs validated every other epoch: unvalidated rows (nan) are never chosen
    src = write_run(str(tmp_path / "b"), lrs[:4], ["nan", 0.5, "nan", 0.4])
    assert R.refit_plan(src).epochs == 2


def test_plan_refuses_unfinished_or_unvalidated_runs(tmp_path):
    src = write_run(str(tmp_path / "a"), [0.01, 0.01], [0.3, 0.5], done=False)
    with pytest.raises(SerError, match=r"a: training not finished \(no done\)"):
        R.refit_plan(src)
    src = write_run(str(tmp_path / "b"), [0.01, 0.01], ["nan", "nan"])
    with pytest.raises(SerError, match="history.tsv has no validated epoch"):
        R.refit_plan(src)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(str(tmp_path_factory.mktemp("refit")), offset_scale=0.25)


def test_refit_fold_trains_on_train_and_valid_speakers(corpus, tmp_path):
    lists = corpus["lists"]
    fold = load_fold(corpus["data"], corpus["fold"], corpus["classes"], refit=True)
    assert sorted(fold.train) == sorted(lists["train"] + lists["valid"]) and fold.valid == {}
    assert all(fold.train_labels[u] == corpus["labels"][u] for u in fold.train)
    # copies of validation utterances: training data of a refit, refused otherwise
    aug, _ = make_aug_dir(str(tmp_path), "aug_valid", corpus, lists["valid"])
    assert len(load_fold(corpus["data"], corpus["fold"], corpus["classes"], [aug], refit=True).train) == 24 + 8
    with pytest.raises(SerError, match="not in .*train.list"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], [aug])
    # the test speaker stays out: its copies are refused by a refit too
    test_aug, _ = make_aug_dir(str(tmp_path), "aug_test", corpus, lists["test"][:1],
                               utt2uniq_override={f"sp1.1-{lists['test'][0]}": lists["train"][0]})
    with pytest.raises(SerError, match="held-out .*speaker 's4'|held-out .*utterance"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], [test_aug], refit=True)
    with pytest.raises(SerError, match="refit run trains on real data only"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], synthetic_dirs=[str(tmp_path)], refit=True)


def test_trainer_refuses_a_schedule_with_validation_data(corpus, tmp_path):
    prep = prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"]), 64, 32)
    with pytest.raises(SerError, match="no validation data"):
        Trainer(None, prep, {}, str(tmp_path), "cpu", 1, {}, lr_schedule=[0.01])


def test_trainer_follows_the_schedule_and_keeps_the_last_epoch(corpus, tmp_path):
    prep = prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"], refit=True), 64, 32)
    schedule = [0.01, 0.005, 0.005, 0.00125]
    cfg = small_config(max_epochs=50)
    meta = {"model_name": "tiny", "model_conf": {}, "num_classes": 3, "classes": CLASSES, "feat_dim": DIM,
            "segment": cfg["segment"], "feat_conf": {}, "train_config": cfg}
    seed_everything(3)
    result = Trainer(TinyNet(), prep, cfg, str(tmp_path), "cpu", 3, meta, lr_schedule=schedule).run()
    assert result["epochs"] == 4 and [float(r[1]) for r in history(str(tmp_path))] == schedule
    assert read_model_file(str(tmp_path / "model.pt"))["meta"]["best_epoch"] == 4   # the last epoch


def run(args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "ser.bin.train"] + args, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)


def history(d):
    with open(os.path.join(d, "history.tsv")) as f:
        return [line.rstrip("\n").split("\t") for line in f][1:]


@pytest.fixture(scope="module")
def source(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("refit_runs")
    conf = root / "train.yaml"
    conf.write_text(CONFIG)
    # a fast plateau rule, so that the source halves its learning rate and the refit replays it
    base = ["--config", str(conf), "--max-epochs", "8", "--set", "plateau.patience=1",
            "--set", "early_stop_patience=4", "--feats-dir", corpus["data"], "--fold-dir", corpus["fold"],
            "--classes", corpus["classes"], "--ngpu", "0", "--num-threads", "1"]
    src = str(root / "src")
    proc = run(base + ["--seed", "1", "--outdir", src])
    assert proc.returncode == 0, proc.stderr
    return {"root": root, "base": base, "src": src}


def test_refit_replays_the_chosen_epochs_on_train_and_valid(source, corpus):
    base, src = source["base"], source["src"]
    plan = R.refit_plan(src)
    out = str(source["root"] / "refit")
    proc = run(base + ["--seed", "1", "--refit-from", src, "--outdir", out])
    assert proc.returncode == 0, proc.stderr
    rows = history(out)
    assert len(rows) == plan.epochs
    assert [float(r[1]) for r in rows] == plan.lrs == [float(r[1]) for r in history(src)[:plan.epochs]]
    assert all(r[4] == "nan" for r in rows)                        # nothing validated
    assert run_fit(out) is None                                    # so no fit row and no selection
    log = open(os.path.join(out, "train.log")).read()
    n = len(corpus["lists"]["train"]) + len(corpus["lists"]["valid"])
    assert f"train: {n} utterances" in log and "valid: 0 utterances" in log and f"refit of {src}" in log
    cfg = yaml.safe_load(open(os.path.join(out, "config.yaml")))
    assert cfg["data"]["train_on"] == "train+valid" and cfg["data"]["refit_from"] == src
    _, meta = load_model(out)
    assert meta["best_epoch"] == plan.epochs and meta["valid_uar"] is None
    # a config hash of its own, the same for any source run of the experiment (fold, seed, source are job keys)
    h_src = run(base + ["--seed", "1", "--print-config-hash"]).stdout.strip()
    h_refit = run(base + ["--seed", "1", "--refit-from", src, "--print-config-hash"]).stdout.strip()
    h_other = run(base + ["--seed", "2", "--refit-from", "elsewhere", "--print-config-hash"]).stdout.strip()
    assert len(h_src) == 8 and h_refit != h_src and h_refit == h_other
    # a re-run is skipped; a killed refit resumes to the same weights
    again = run(base + ["--seed", "1", "--refit-from", src, "--outdir", out])
    assert again.returncode == 0 and "already trained" in again.stderr
    killed = str(source["root"] / "killed")
    args = base + ["--seed", "1", "--refit-from", src, "--outdir", killed]
    assert run(args, {"SER_TRAIN_KILL_AFTER_EPOCH": "1"}).returncode != 0
    assert len(history(killed)) == 1 and not os.path.exists(os.path.join(killed, "done"))
    assert run(args).returncode == 0
    assert [r[:3] for r in history(killed)] == [r[:3] for r in rows]


@pytest.mark.parametrize("extra, message", [
    (["--seed", "2"], "seed 1, not 2"),
    (["--seed", "1", "--set", "optim.lr=0.02"], "is not this run's without the refit"),
])
def test_refit_refuses_a_source_of_another_run(source, extra, message, tmp_path):
    proc = run(source["base"] + extra + ["--refit-from", source["src"], "--outdir", str(tmp_path / "r")])
    assert proc.returncode != 0 and message in proc.stderr
    assert not os.path.exists(tmp_path / "r" / "done")


def test_refit_refuses_an_unfinished_source(source, tmp_path):
    unfinished = tmp_path / "src"
    shutil.copytree(source["src"], unfinished)
    os.remove(unfinished / "done")
    proc = run(source["base"] + ["--seed", "1", "--refit-from", str(unfinished), "--outdir", str(tmp_path / "r")])
    assert proc.returncode != 0 and "training not finished (no done)" in proc.stderr
