"""Integration: stages 0-5 of egs/emodb on four EmoDB speakers with tiny settings."""
import json
import os
import re
import subprocess

from conftest import copy_recipe, fake_emodb

SPEAKERS = ("03", "08", "09", "10")
TINY = {
    "cnn": "model_conf:\n  conv_channels: [4, 8]\n",
    "densenet_lstm_highway": ("model_conf:\n  growth_rate: 4\n  num_layers: 2\n  lstm_hidden: 8\n"
                              "  skip_dim: 8\n  highway_dim: 8\n"),
}
SCHEDULE = """segment: {length: 256, shift: 128}
batch_size: 16
optim: {lr: 1.0e-3}
max_epochs: 2
plateau: {patience: 1, factor: 0.5}
early_stop_patience: 2
mixup: {enabled: false, alpha: 0.2}
"""


def make_tiny_recipe(tmp_path, emodb_dir, speakers=SPEAKERS):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    corpus = fake_emodb(emodb_dir, tmp_path / "corpus", speakers)
    tiny = recipe / "conf" / "tiny"
    tiny.mkdir()
    for model, conf in TINY.items():
        (tiny / f"train_{model}.yaml").write_text(f"model: {model}\n{conf}{SCHEDULE}")
    pairs = [f'"{a}:{b}"' for a, b in zip(speakers[::2], speakers[1::2])]
    (recipe / "conf" / "folds.yaml").write_text(f"pairs: [{', '.join(pairs)}]\n")
    return recipe, corpus


def test_stages_0_to_5_write_results(tmp_path, emodb_dir, script_env):
    recipe, corpus = make_tiny_recipe(tmp_path, emodb_dir)
    args = ["--feats", "spec", "--conf_dir", "conf/tiny", "--models", "cnn densenet_lstm_highway",
            "--conditions", "clean fgsm"]
    r = subprocess.run(["./run.sh", *args], cwd=recipe, env=dict(script_env, EMODB=str(corpus)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for n in range(6):
        assert f"Stage {n}:" in r.stdout

    folds = recipe / "data" / "all_folds"
    assert sorted(p.name for p in folds.iterdir() if p.is_dir()) == ["1", "2", "3", "4"]
    exp = recipe / "exp" / "all"
    tags = sorted(p.name for p in exp.iterdir())
    assert len(tags) == 2 and tags[0].startswith("spec_cnn_none_") and "densenet_lstm_highway" in tags[1]
    for tag in tags:
        for k in range(1, 5):
            run = exp / tag / f"fold.{k}" / "seed1"
            assert (run / "done").exists() and (run / "model.pt").exists()
            clean = json.loads((run / "test_clean" / "metrics.json").read_text())
            attacked = json.loads((run / "test_fgsm" / "metrics.json").read_text())
            assert clean["num_utts"] == len((folds / str(k) / "test.list").read_text().split())
            assert attacked["eps"] == 0.08 and attacked["clean_uar"] == clean["uar"]
            assert (run / "test_clean" / "confusion.png").read_bytes()[:4] == b"\x89PNG"

    results = (recipe / "RESULTS.md").read_text()
    assert "EmoDB (2.0 s copy" in results
    # the recipe's reading of its results (local/results_note.md) is the Notes section
    note = (recipe / "local" / "results_note.md").read_text().strip()
    assert f"## Notes\n\n{note}\n" in results
    rows = [l for l in results.splitlines() if l.startswith("|") and re.search(r"\d+\.\d ± \d+\.\d", l)]
    assert any("cnn" in l for l in rows) and any("densenet_lstm_highway" in l for l in rows)

    # A second run skips everything: trained and scored folds are not redone.
    r = subprocess.run(["./run.sh", *args, "--stage", "2"], cwd=recipe, env=dict(script_env, EMODB=str(corpus)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Stage 2: skipped" in r.stdout
    # stages 3 and 4 say so in one line each and start no job (the training logs stay as they were)
    assert "Stage 3: skipped (" in r.stdout and "Stage 4: skipped (" in r.stdout
    logs = "".join(p.read_text() for p in (exp / tags[0] / "log").glob("train.seed1.*.log"))
    assert "already trained" not in logs
    # a fold maker in local/ (local/*folds*, what a local/make_folds.sh calls) is in stage 2's
    # signature: an edit re-makes the folds (here the same folds, so no experiment changes)
    (recipe / "local" / "my_folds_helper.py").write_text("# called by a local/make_folds.sh\n")
    r = subprocess.run(["./run.sh", *args, "--stage", "0", "--stop_stage", "3"], cwd=recipe,
                       env=dict(script_env, EMODB=str(corpus)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Stage 0: skipped" in r.stdout and "Stage 2: speaker-independent folds" in r.stdout
    assert "Stage 3: skipped (" in r.stdout

    # A second setting of cnn (its own conf dir), chosen per fold on validation UAR; stage 5
    # refreshes the selection and reports it as a row of its own.
    smooth = recipe / "conf" / "smooth"
    smooth.mkdir()
    (smooth / "train_cnn.yaml").write_text((recipe / "conf" / "tiny" / "train_cnn.yaml").read_text()
                                           + "label_smoothing: 0.1\n")
    env = dict(script_env, EMODB=str(corpus))
    r = subprocess.run(["./run.sh", "--feats", "spec", "--conf_dir", "conf/smooth", "--models", "cnn",
                        "--stage", "3", "--stop_stage", "4"], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    candidates = sorted(p.name for p in exp.iterdir() if p.name.startswith("spec_cnn_none_"))
    assert len(candidates) == 2
    r = subprocess.run(["python3", "-m", "ser.bin.select_on_valid", "--exp-dir", "exp/all", "--out-tag", "cnn_sel",
                        *candidates], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["./run.sh", "--stage", "5", "--stop_stage", "5"], cwd=recipe, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Stage 5: refreshing the per-fold selection exp/all/cnn_sel with ser.bin.select_on_valid" in r.stdout
    results = (recipe / "RESULTS.md").read_text()
    assert "| cnn (spec; chosen per fold on validation UAR) |" in results
    assert "| cnn (spec; label_smoothing 0.1) |" in results and "| cnn (spec; label_smoothing 0.0) |" in results
    # the second setting was scored on clean data only, so the selection reports no FGSM row
    assert not (exp / "cnn_sel" / "fold.1" / "seed1" / "test_fgsm").exists()
    assert (exp / "cnn_sel" / "fold.1" / "seed1" / "test_clean" / "metrics.json").exists()

    # A second seed, with seed 1's fold 3 unfinished: stage 3 trains the five unfinished runs as one
    # job array (logs train.seed<S>.<K>.log), stage 4 scores them and the mean posterior of both seeds.
    smooth_tag = next(t for t in candidates if "label_smoothing: 0.1" in (exp / t / "fold.1" / "seed1" / "config.yaml").read_text())
    seed1 = exp / smooth_tag / "fold.3" / "seed1"
    before = (seed1 / "test_clean" / "predictions.tsv").read_text()
    kept_log = exp / smooth_tag / "log" / "train.seed1.1.log"
    kept = kept_log.read_text()
    (seed1 / "done").unlink()
    r = subprocess.run(["./run.sh", "--feats", "spec", "--conf_dir", "conf/smooth", "--models", "cnn",
                        "--nrepeats", "2", "--stage", "3", "--stop_stage", "4"], cwd=recipe, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Stage 3: training cnn (spec, aug none, seed 1) with ser.bin.train: folds 3 of 4 -> exp/all/{smooth_tag}" in r.stdout
    assert f"Stage 3: training cnn (spec, aug none, seed 2) with ser.bin.train: folds 1 2 3 4 of 4 -> exp/all/{smooth_tag}" in r.stdout
    logs = sorted(p.name for p in (exp / smooth_tag / "log").glob("train.seed*.log"))
    assert logs == [f"train.seed{s}.{k}.log" for s in (1, 2) for k in (1, 2, 3, 4)]
    assert kept_log.read_text() == kept  # a finished run is not started again
    assert "# Ended (code 0)" in (exp / smooth_tag / "log" / "train.seed2.4.log").read_text()
    for k in range(1, 5):
        assert (exp / smooth_tag / f"fold.{k}" / "seed2" / "done").exists()
    # the re-trained run got seed 1 and fold 3 from its job name: the same model, the same scores
    assert (seed1 / "done").exists() and (seed1 / "test_clean" / "predictions.tsv").read_text() == before
    assert (f"Stage 4: seed ensemble of cnn (none, seeds 1-2) with ser.bin.ensemble_seeds: exp/all/{smooth_tag} -> "
            f"exp/all/{smooth_tag}_seed_ensemble") in r.stdout
    ens = exp / f"{smooth_tag}_seed_ensemble"
    for k in range(1, 5):
        m = json.loads((ens / f"fold.{k}" / "seed1" / "test_clean" / "metrics.json").read_text())
        assert m["ensemble_seeds"] == [1, 2]
        assert m["num_utts"] == len((folds / str(k) / "test.list").read_text().split())

    # Seeds 3-4 added later: only their runs train, and their ensemble takes its own tag, so the
    # ensemble of seeds 1-2 stays as it was.
    ens_before = (ens / "fold.2" / "seed1" / "test_clean" / "predictions.tsv").read_text()
    r = subprocess.run(["./run.sh", "--feats", "spec", "--conf_dir", "conf/smooth", "--models", "cnn",
                        "--first_seed", "3", "--nrepeats", "2", "--stage", "3", "--stop_stage", "4"],
                       cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "seed 1)" not in r.stdout and "seed 2)" not in r.stdout
    for s in (3, 4):
        assert f"Stage 3: training cnn (spec, aug none, seed {s}) with ser.bin.train: folds 1 2 3 4 of 4" in r.stdout
    logs = sorted(p.name for p in (exp / smooth_tag / "log").glob("train.seed*.log"))
    assert logs == [f"train.seed{s}.{k}.log" for s in (1, 2, 3, 4) for k in (1, 2, 3, 4)]
    assert kept_log.read_text() == kept
    assert (f"Stage 4: seed ensemble of cnn (none, seeds 3-4) with ser.bin.ensemble_seeds: exp/all/{smooth_tag} -> "
            f"exp/all/{smooth_tag}_seed_ensemble_3-4") in r.stdout
    m = json.loads((exp / f"{smooth_tag}_seed_ensemble_3-4" / "fold.1" / "seed1" / "test_clean" / "metrics.json").read_text())
    assert m["ensemble_seeds"] == [3, 4]
    assert (ens / "fold.2" / "seed1" / "test_clean" / "predictions.tsv").read_text() == ens_before
    assert json.loads((ens / "fold.1" / "seed1" / "test_clean" / "metrics.json").read_text())["ensemble_seeds"] == [1, 2]


def test_refit_trains_each_run_again_on_train_and_valid_and_reports_it(tmp_path, emodb_dir, script_env):
    recipe, corpus = make_tiny_recipe(tmp_path, emodb_dir)
    env = dict(script_env, EMODB=str(corpus))
    args = ["./run.sh", "--feats", "spec", "--conf_dir", "conf/tiny", "--models", "cnn", "--nrepeats", "2",
            "--refit", "true"]
    r = subprocess.run(args + ["--stop_stage", "5"], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    exp = recipe / "exp" / "all"
    tag = next(p.name for p in exp.iterdir() if p.name.startswith("spec_cnn_none_") and p.name.count("_") == 3)
    for s in (1, 2):
        assert (f"Stage 3: refitting cnn (spec, aug none, seed {s}) on training + validation speakers with "
                f"ser.bin.train --refit-from exp/all/{tag}: folds 1 2 3 4 of 4 -> exp/all/{tag}_refit") in r.stdout
    folds = recipe / "data" / "all_folds"
    for k in range(1, 5):
        for s in (1, 2):
            src, refit = exp / tag / f"fold.{k}" / f"seed{s}", exp / f"{tag}_refit" / f"fold.{k}" / f"seed{s}"
            rows = [l.split("\t") for l in (refit / "history.tsv").read_text().splitlines()[1:]]
            uars = [float(l.split("\t")[4]) for l in (src / "history.tsv").read_text().splitlines()[1:]]
            assert len(rows) == uars.index(max(uars)) + 1           # the source's best epoch
            log = (refit / "train.log").read_text()
            n = sum(len((folds / str(k) / f"{x}.list").read_text().split()) for x in ("train", "valid"))
            assert f"train: {n} utterances" in log and f"refit of exp/all/{tag}/fold.{k}/seed{s}" in log
            m = json.loads((refit / "test_clean" / "metrics.json").read_text())
            assert m["num_utts"] == len((folds / str(k) / "test.list").read_text().split())
    m = json.loads((exp / f"{tag}_refit_seed_ensemble" / "fold.1" / "seed1" / "test_clean" / "metrics.json").read_text())
    assert m["ensemble_seeds"] == [1, 2] and m["ensemble_of"] == [f"{tag}_refit"]
    results = (recipe / "RESULTS.md").read_text()
    assert "| cnn (spec) |" in results and "| cnn (spec; refit on train+valid) |" in results
    assert "| cnn (spec; refit on train+valid; mean posterior of seeds 1 2) |" in results
    assert "- Rows 'refit on train+valid': every run trained again" in results
    # a second run skips the refits too
    r = subprocess.run(args + ["--stage", "3", "--stop_stage", "3"], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"Stage 3: skipped (4 folds done): refit of cnn (spec, aug none, seed 2) in exp/all/{tag}_refit" in r.stdout
    r = subprocess.run(args + ["--refit", "yes"], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "option --refit takes true or false, got 'yes'" in r.stderr

DIFFUSION = """process: {steps: 20}
denoiser: {channels: 16, num_layers: 2, num_res_blocks: 1, heads: 2, time_dim: 16, cond_dim: 16, norm_groups: 4}
conditioner: {type: sentencepiece, dim: 16, layers: 1, heads: 2, num_tokens: 2}
spm: {vocab_size: 60}
batch_size: 4
optim: {lr: 1.0e-3, warmup_steps: 2}
max_steps: 4
checkpoint_every: 2
log_every: 2
"""


def test_synthetic_augmentation_stages(tmp_path, emodb_dir, script_env):
    """Paper 2's pipeline through run.sh: per-fold diffusion models, samples, classifier on real+syn."""
    recipe, corpus = make_tiny_recipe(tmp_path, emodb_dir)
    tiny = recipe / "conf" / "tiny"
    (tiny / "diffusion.yaml").write_text(DIFFUSION)
    (tiny / "train_cnn_blstm.yaml").write_text(
        "model: cnn_blstm\nmodel_conf: {conv_channels: [8, 8, 8], kernel: 3, lstm_hidden: 8, lstm_layers: 1}\n"
        + SCHEDULE.replace("max_epochs: 2", "max_epochs: 1"))
    args = ["--feats", "mel", "--feat", "mel", "--conf_dir", "conf/tiny", "--models", "cnn_blstm",
            "--augs", "syn real+syn", "--sampling_steps", "4", "--griffin_lim", "0"]
    r = subprocess.run(["./run.sh", *args], cwd=recipe, env=dict(script_env, EMODB=str(corpus)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Stage 3: training the diffusion model" in r.stdout

    exp = recipe / "exp" / "all"
    (ddir,) = exp.glob("diffusion_*")
    fold1 = recipe / "data" / "all_folds" / "1"
    train_spk = {u.split("-")[0] for u in (fold1 / "train.list").read_text().split()}
    syn_spk = {l.split()[1] for l in (ddir / "fold.1" / "syn_s4_n1" / "utt2spk").read_text().splitlines()}
    assert syn_spk == train_spk  # conditioned on the fold's training speakers only
    assert (ddir / "fold.1" / "syn_s4_n1" / "report" / "mad.tsv").exists()
    runs = {p.name.rsplit("_", 1)[0]: p for p in exp.glob("mel_cnn_blstm_*")}
    assert set(runs) == {"mel_cnn_blstm_syn", "mel_cnn_blstm_real_syn"}
    for run in runs.values():
        for k in range(1, 5):
            assert (run / f"fold.{k}" / "seed1" / "test_clean" / "done").exists()
    # stage 5: RESULTS.md reports the diffusion models and links fold 1's real-vs-synthetic grid
    results = (recipe / "RESULTS.md").read_text()
    section = results.split("## Synthetic data (paper 2)", 1)[1]
    assert f"`{ddir.name}`" in section and "S = 4 strided sampling steps" in section
    # paired folds (test 03 / valid 08 and test 08 / valid 03) share one model: trained once
    assert "2 models (fold 1, 3)" in section and "fold 2 uses fold 1's model" in section
    assert os.readlink(ddir / "fold.2") == "fold.1" and (ddir / "train_folds").read_text() == "1\n3\n"
    assert "| sadness |" in section
    grid = recipe / "figures" / "mel_grid_emodb_all_syn_s4_n1.png"
    assert grid.read_bytes() == (ddir / "fold.1" / "syn_s4_n1" / "report" / "mel_grid.png").read_bytes()

    # re-running stage 3 starts only the diffusion models without `done`; the trained ones' job
    # logs keep their training
    job_log = ddir / "log" / "train.1.log"
    trained_log = job_log.read_text()
    assert "finished: steps 4" in trained_log
    (ddir / "fold.3" / "done").unlink()
    stage3 = args + ["--stage", "3", "--stop_stage", "3"]
    r = subprocess.run(["./run.sh", *stage3], cwd=recipe, env=dict(script_env, EMODB=str(corpus)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ser.bin.train_diffusion: jobs 2 of 2" in r.stdout
    assert (ddir / "fold.3" / "done").exists() and job_log.read_text() == trained_log
    r = subprocess.run(["./run.sh", *stage3], cwd=recipe, env=dict(script_env, EMODB=str(corpus)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Stage 3: skipped (2 diffusion models done)" in r.stdout
    assert "already trained" not in (ddir / "log" / "train.2.log").read_text()
    # nor are the unchanged sample sets resampled or their reports rewritten
    assert "already generated" in (ddir / "log" / "generate_syn_s4_n1.1.log").read_text()
    assert "already reported" in (ddir / "log" / "report_syn_s4_n1.1.log").read_text()


def test_another_fold_scheme_has_its_own_folds_experiments_and_report_rows(tmp_path, emodb_dir, script_env):
    recipe, corpus = make_tiny_recipe(tmp_path, emodb_dir)
    (recipe / "conf" / "folds_valid2.yaml").write_text(
        "groups:\n" + "".join(f'  - {{test: "{t}", valid: "{v}"}}\n' for t, v in
                              (("03", "08 09"), ("08", "09 10"), ("09", "10 03"), ("10", "03 08"))))
    env = dict(script_env, EMODB=str(corpus))
    args = ["--feats", "spec", "--conf_dir", "conf/tiny", "--models", "cnn", "--folds_conf", "conf/folds_valid2.yaml"]
    r = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("Stage 2: speaker-independent folds (ser.bin.make_folds, conf/folds_valid2.yaml): "
            "data/all -> data/all_folds_valid2") in r.stdout
    assert not (recipe / "data" / "all_folds").exists() and not (recipe / "exp" / "all").exists()
    folds = recipe / "data" / "all_folds_valid2"
    assert (folds / "1" / "valid.list").read_text().split()[0].startswith("08-")
    assert {u.split("-")[0] for u in (folds / "1" / "valid.list").read_text().split()} == {"08", "09"}
    tag = next((recipe / "exp" / "all_folds_valid2").iterdir())
    assert all((tag / f"fold.{k}" / "seed1" / "test_clean" / "done").exists() for k in range(1, 5))
    results = (recipe / "RESULTS.md").read_text()
    assert "**emodb/all_folds_valid2**" in results
    assert "Leave-one-speaker-out, 4 folds (each tests on one speaker, 2 other speakers validate" in results

    # Edited folds: the experiment trained on the old ones is refused, not resumed or re-scored.
    assert len((tag / "folds.md5").read_text().strip()) == 32
    conf = recipe / "conf" / "folds_valid2.yaml"
    conf.write_text(conf.read_text().replace('valid: "08 09"', 'valid: "09 10"'))
    r = subprocess.run(["./run.sh", *args, "--stage", "2", "--stop_stage", "4"], cwd=recipe, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert (f"run.sh: exp/all_folds_valid2/{tag.name} was trained on other folds than data/all_folds_valid2 "
            "holds now") in r.stderr
    assert "Stage 3: skipped" not in r.stdout

    for conf, message in (("conf/nope.yaml", "--folds_conf conf/nope.yaml: no such file"),
                          ("conf/classes.txt", "name it conf/folds_<name>.yaml")):
        r = subprocess.run(["./run.sh", "--folds_conf", conf, "--stage", "2", "--stop_stage", "2"], cwd=recipe,
                           env=env, capture_output=True, text=True)
        assert r.returncode != 0 and message in r.stderr, r.stderr


def test_functionals_and_mlp_through_the_recipe(tmp_path, emodb_dir, script_env):
    """openSMILE functionals as a feature type of stage 1 and the mlp as a classifier of stages 3-5."""
    recipe, corpus = make_tiny_recipe(tmp_path, emodb_dir)
    (recipe / "conf" / "tiny" / "train_mlp.yaml").write_text(
        "model: mlp\nmodel_conf: {hidden_dim: 16}\n" + SCHEDULE.replace("{length: 256, shift: 128}",
                                                                        "{length: 1, shift: 1}"))
    args = ["--feats", "egemaps", "--feat", "egemaps", "--conf_dir", "conf/tiny", "--models", "mlp"]
    r = subprocess.run(["./run.sh", *args], cwd=recipe, env=dict(script_env, EMODB=str(corpus)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Stage 1: feature extraction (egemaps," in r.stdout
    num_frames = (recipe / "data" / "all_egemaps" / "utt2num_frames").read_text().split("\n")
    assert num_frames[0].endswith(" 1") and len(num_frames) > 40
    (tag,) = (recipe / "exp" / "all").iterdir()
    assert tag.name.startswith("egemaps_mlp_none_")
    for k in range(1, 5):
        clean = json.loads((tag / f"fold.{k}" / "seed1" / "test_clean" / "metrics.json").read_text())
        assert clean["num_utts"] == len((recipe / "data" / "all_folds" / str(k) / "test.list").read_text().split())
    # the row names the functional set (both sets share the feature type)
    rows = [l for l in (recipe / "RESULTS.md").read_text().splitlines() if l.startswith("| mlp (eGeMAPSv02")]
    assert rows and any(re.search(r"\d+\.\d ± \d+\.\d", l) for l in rows)
