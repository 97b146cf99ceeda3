"""The slim copy of an experiment's scores (ser.bin.archive_scores): what it keeps, and that the
report and ensemble_seeds read it as they read the recipe's exp dir."""
import json
import os
import subprocess
import sys

import pytest

from ser.bin import archive_scores, ensemble_seeds, report
from ser.errors import SerError
from ser.eval.scoring import write_scores
from eval_helpers import write_training_run

CLASSES = ["ang", "neu", "sad"]
TAG = "mel_densenet_none_abcd1234"
SPEAKERS = {1: ("03", "08"), 2: ("08", "03")}          # fold -> (test, validation) speaker
UTTS = {1: ["03a", "03b", "03c"], 2: ["08a", "08b", "08c", "08d"]}
TRUE = {1: [0, 1, 2], 2: [2, 1, 0, 0]}
POST = {(1, 1): [[.6, .3, .1], [.2, .3, .5], [.1, .2, .7]], (1, 2): [[.2, .5, .3], [.1, .8, .1], [.3, .3, .4]],
        (2, 1): [[.1, .1, .8], [.5, .4, .1], [.7, .2, .1], [.2, .6, .2]],
        (2, 2): [[.4, .1, .5], [.2, .7, .1], [.6, .3, .1], [.4, .3, .3]]}


def write_run(recipe, fold, seed, done=True, tag=TAG, classes="data/all_folds/classes.txt"):
    run = os.path.join(recipe, "exp", "all", tag, f"fold.{fold}", f"seed{seed}")
    cfg = {"model": "densenet", "max_epochs": 9, "seed": seed,
           "data": {"feats_dir": "data/all_mel", "fold_dir": f"data/all_folds/{fold}", "classes": classes}}
    write_training_run(run, cfg, [0.5, 0.6 + 0.01 * seed], [3.0, 3.5])
    with open(os.path.join(run, "train.log"), "w") as f:
        f.write("2026-12-03 10:00:00 start\n2026-12-03 10:00:07 finished: epoch 2 valid_uar 0.6\n")
    for big in ("model.pt", "history.png"):
        with open(os.path.join(run, big), "wb") as f:
            f.write(b"\0" * 4096)
    os.makedirs(os.path.join(run, "checkpoints"))
    with open(os.path.join(run, "checkpoints", "last.pt"), "wb") as f:
        f.write(b"\0" * 4096)
    log = os.path.join(recipe, "exp", "all", tag, "log")
    os.makedirs(log, exist_ok=True)
    with open(os.path.join(log, f"train.seed{seed}.{fold}.log"), "w") as f:
        f.write(f"# launch_train.sh -- --config conf/train_densenet.yaml --seed {seed} --num-threads 1\n")
    if done:
        open(os.path.join(run, "done"), "w").close()
        write_scores(os.path.join(run, "test_clean"), UTTS[fold], TRUE[fold], POST[fold, min(seed, 2)], CLASSES,
                     extra={"speakers": [SPEAKERS[fold][0]]})
    return run


@pytest.fixture
def recipe(tmp_path):
    recipe = tmp_path / "egs" / "emodb"
    for fold, (test, valid) in SPEAKERS.items():
        d = recipe / "data" / "all_folds" / str(fold)
        d.mkdir(parents=True)
        (d / "info.yaml").write_text(f"test_speakers: ['{test}']\nvalid_speakers: ['{valid}']\n")
        (d / "train.list").write_text("not copied\n")
    (recipe / "data" / "all_folds" / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (recipe / "data" / "all_folds" / "folds.tsv").write_text("fold\ttest\tvalid\n1\t03\t08\n2\t08\t03\n")
    (recipe / "data" / "all_mel").mkdir()
    (recipe / "data" / "all_mel" / "conf.yaml").write_text("type: mel\n")
    for fold in SPEAKERS:
        for seed in (1, 2):
            write_run(str(recipe), fold, seed)
    return recipe


def files_below(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_archive_keeps_configs_histories_and_scores_but_not_models(recipe, tmp_path):
    out = tmp_path / "results" / "scores"
    assert archive_scores.main(["--exp-dir", str(recipe / "exp" / "all"), "--out", str(out), TAG]) == 0
    run_files = ["config.yaml", "done", "history.tsv", "test_clean/done", "test_clean/metrics.json",
                 "test_clean/predictions.tsv", "train.log"]
    expected = sorted([f"emodb/exp/all/{TAG}/fold.{k}/seed{s}/{f}" for k in (1, 2) for s in (1, 2) for f in run_files]
                      + [f"emodb/exp/all/{TAG}/log/train.seed{s}.{k}.log" for k in (1, 2) for s in (1, 2)]
                      + ["emodb/data/all_folds/1/info.yaml", "emodb/data/all_folds/2/info.yaml",
                         "emodb/data/all_folds/classes.txt", "emodb/data/all_folds/folds.tsv",
                         "emodb/data/all_mel/conf.yaml"])
    assert files_below(out) == expected
    for rel in expected:
        src = recipe / rel[len("emodb/"):]
        assert (out / rel).read_bytes() == src.read_bytes(), rel


def table_rows(md):
    """The report's table rows that name no file (figure links and paths differ between the trees)."""
    return [ln for ln in md.splitlines() if ln.startswith("|") and ".png" not in ln and "/" not in ln.split("|")[1]]


def test_report_and_ensemble_read_the_archive_as_they_read_exp(recipe, tmp_path):
    exp = str(recipe / "exp" / "all")
    out = tmp_path / "scores"
    archive_scores.main(["--exp-dir", exp, "--out", str(out), TAG])
    archived = str(out / "emodb" / "exp" / "all")
    for d in (exp, archived):
        assert ensemble_seeds.main(["--exp-dir", d, "--out-tag", "ens", TAG]) == 0
    # an ensemble (no training of its own, so no done) is archived with its tag.yaml
    assert archive_scores.main(["--exp-dir", exp, "--out", str(tmp_path / "ens_scores"), "ens"]) == 0
    assert (tmp_path / "ens_scores" / "emodb" / "exp" / "all" / "ens" / "tag.yaml").read_bytes() == \
        (recipe / "exp" / "all" / "ens" / "tag.yaml").read_bytes()
    assert (tmp_path / "ens_scores" / "emodb" / "exp" / "all" / "ens" / "fold.2" / "seed1" / "test_clean" /
            "predictions.tsv").is_file()
    for fold in SPEAKERS:
        metrics = [json.load(open(os.path.join(d, "ens", f"fold.{fold}", "seed1", "test_clean", "metrics.json")))
                   for d in (exp, archived)]
        assert metrics[0]["uar"] == metrics[1]["uar"] and metrics[0]["confusion"] == metrics[1]["confusion"]
    md = []
    for i, d in enumerate((exp, archived)):
        path = tmp_path / f"report{i}.md"
        report.main(["--exp-dir", d, "--out", str(path), "--fig-dir", str(tmp_path / f"fig{i}")])
        md.append(path.read_text())
    rows = table_rows(md[0])
    assert rows == table_rows(md[1])
    # the rows hold the corpus, the fold's test speaker and the selected epoch's validation UAR (history.tsv)
    assert any("emodb/all" in r for r in rows) and any("| 03 |" in r for r in rows)
    assert any("61.5" in r for r in rows)     # seeds 1-2 select epoch 2 at 0.61 and 0.62
    assert "Training runs (4): device ?; torch threads per job 1; precision fp32." in md[1]   # from the job logs


def test_unfinished_run_is_refused_unless_its_seed_is_left_out(recipe, tmp_path):
    write_run(str(recipe), 1, 3, done=False)
    write_run(str(recipe), 2, 3)
    out = tmp_path / "scores"
    r = subprocess.run([sys.executable, "-m", "ser.bin.archive_scores", "--exp-dir", str(recipe / "exp" / "all"),
                        "--out", str(out), TAG], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].endswith(
        f"{recipe}/exp/all/{TAG}/fold.1/seed3: training not finished (no done): archive finished runs only (give --seeds)")
    assert not (out / "emodb" / "exp" / "all" / TAG).exists()
    assert archive_scores.main(["--exp-dir", str(recipe / "exp" / "all"), "--out", str(out), "--seeds", "1 2", TAG]) == 0
    assert sorted(os.listdir(out / "emodb" / "exp" / "all" / TAG / "fold.2")) == ["seed1", "seed2"]


def test_archiving_again_replaces_the_tags_copy(recipe, tmp_path):
    exp, out = str(recipe / "exp" / "all"), tmp_path / "scores"
    archive_scores.main(["--exp-dir", exp, "--out", str(out), TAG])
    archive_scores.main(["--exp-dir", exp, "--out", str(out), "--seeds", "2", TAG])
    assert sorted(os.listdir(out / "emodb" / "exp" / "all" / TAG / "fold.1")) == ["seed2"]
    assert not [n for n in os.listdir(out / "emodb" / "exp" / "all") if n.startswith(".")]


def test_data_files_outside_the_recipe_are_not_mirrored(recipe, tmp_path):
    other = "../ravdess/data/all_folds/classes.txt"
    os.makedirs(recipe.parent / "ravdess" / "data" / "all_folds")
    (recipe.parent / "ravdess" / "data" / "all_folds" / "classes.txt").write_text("x\n")
    write_run(str(recipe), 1, 1, tag="other_tag", classes=other)
    out = tmp_path / "scores"
    archive_scores.main(["--exp-dir", str(recipe / "exp" / "all"), "--out", str(out), "other_tag"])
    assert not (tmp_path / "ravdess").exists() and not (out / "ravdess").exists()
    assert "classes.txt" not in os.listdir(out / "emodb" / "data" / "all_folds")


def test_bad_arguments_name_what_is_wrong(recipe, tmp_path):
    with pytest.raises(SerError, match="not a recipe's experiment dir"):
        archive_scores.main(["--exp-dir", str(tmp_path / "elsewhere"), "--out", str(tmp_path / "s"), TAG])
    with pytest.raises(SerError, match=r"experiment 'nope': no runs under .*exp/all/nope"):
        archive_scores.main(["--exp-dir", str(recipe / "exp" / "all"), "--out", str(tmp_path / "s"), "nope"])
    with pytest.raises(SerError, match=f"experiment '{TAG}': no runs of seed 7 under"):
        archive_scores.main(["--exp-dir", str(recipe / "exp" / "all"), "--out", str(tmp_path / "s"), "--seeds", "7", TAG])
