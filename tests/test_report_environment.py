"""ser.eval.report.environment.config_ref: RESULTS.md links to the config each run named, and
never out of the repository tree (a worktree that ran the experiment, a config gone since)."""
from ser.eval.report.environment import config_ref


def test_config_ref(tmp_path):
    root = tmp_path / "main"
    recipe = root / "egs" / "emodb"
    for f in ("egs/emodb/conf/diffusion.yaml", "egs/TEMPLATE/conf/train_cnn.yaml"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x: 1\n")
    worktree = tmp_path / "run-table1" / "egs"
    (worktree / "TEMPLATE" / "conf").mkdir(parents=True)
    (worktree / "TEMPLATE" / "conf" / "train_cnn.yaml").write_text("x: 1\n")

    # the recipe's own file, by the path the run gave or by the same path in another checkout
    assert config_ref(recipe / "conf" / "diffusion.yaml", recipe) == "[conf/diffusion.yaml](conf/diffusion.yaml)"
    assert config_ref(tmp_path / "run-table1/egs/emodb/conf/diffusion.yaml", recipe) == \
        "[conf/diffusion.yaml](conf/diffusion.yaml)"
    assert config_ref(worktree / "TEMPLATE" / "conf" / "train_cnn.yaml", recipe) == \
        "[../TEMPLATE/conf/train_cnn.yaml](../TEMPLATE/conf/train_cnn.yaml)"
    # gone from the recipe: the file the recipe's lookup reads now
    assert config_ref(recipe / "conf" / "train_cnn.yaml", recipe) == (
        "`conf/train_cnn.yaml` (not in this checkout; the recipe now reads "
        "[../TEMPLATE/conf/train_cnn.yaml](../TEMPLATE/conf/train_cnn.yaml))")
    # nowhere: the path as the run gave it, no link
    assert config_ref(recipe / "conf" / "train_x.yaml", recipe) == f"`{recipe}/conf/train_x.yaml` (not in this checkout)"
    assert config_ref(tmp_path / "elsewhere.yaml", recipe) == f"`{tmp_path}/elsewhere.yaml` (not in this checkout)"


def test_config_ref_from_a_dated_report_below_the_recipe(tmp_path):
    root = tmp_path / "main"
    (root / "egs/emodb/conf/paper_bf16").mkdir(parents=True)
    (root / "egs/emodb/conf/paper_bf16/train_cnn.yaml").write_text("x: 1\n")
    out_dir = root / "egs/emodb/results/paper_bf16_2026-11-30"
    out_dir.mkdir(parents=True)
    # the worktree that ran it: the same path in this checkout, seen from two levels down
    assert config_ref(tmp_path / "run-x/egs/emodb/conf/paper_bf16/train_cnn.yaml", out_dir) == \
        "[../../conf/paper_bf16/train_cnn.yaml](../../conf/paper_bf16/train_cnn.yaml)"


def _resolved(config, *options):
    """The config.yaml that ser.bin.train writes for CONFIG and the recipe's command-line options."""
    from ser.bin import train
    argv = ["--config", str(config), "--feats-dir", "data/all_spec", "--fold-dir", "data/all_folds/1",
            "--classes", "data/all_folds/classes.txt", "--seed", "1", *options]
    return train.resolve_config(train.get_parser().parse_args(argv))


# the first line of a job log as run.sh writes it (the seed and fold filled in by the job's shell)
JOB = ("# launch_train.sh --module ser.bin.train --ngpu 0 --num_nodes 1 -- --config {config} "
       "--feats-dir data/all_spec --fold-dir \"data/all_folds/$(echo 1.3 | cut -d. -f2)\" "
       "--classes data/all_folds/classes.txt --augmentation none --mixup false "
       "--seed \"$(echo 1.3 | cut -d. -f1)\" --num-threads 1 --outdir \"exp/all/x/fold.3/seed1\"")

CNN_LSTM = "model: cnn_lstm\nmodel_conf:\n  conv_channels: [16, 32, 32, 64]\n  lstm_hidden: 64\n"


def test_config_ref_says_what_changed_in_the_linked_file_since_the_run(tmp_path):
    from ser.eval.report.environment import config_changes
    recipe = tmp_path / "main" / "egs" / "emodb"
    conf = tmp_path / "main" / "egs" / "TEMPLATE" / "conf" / "train_cnn_lstm.yaml"
    conf.parent.mkdir(parents=True)
    recipe.mkdir(parents=True)
    conf.write_text(CNN_LSTM)
    run_cfg = _resolved(conf, "--augmentation", "none", "--mixup", "false")
    job = JOB.format(config=conf)
    changes = config_changes(job, run_cfg)
    link = "[../TEMPLATE/conf/train_cnn_lstm.yaml](../TEMPLATE/conf/train_cnn_lstm.yaml)"

    assert config_changes(job, run_cfg)(str(conf)) == {}
    assert config_ref(conf, recipe, changes) == link
    # the file edited after the run: the link says how, the run's value first
    conf.write_text(CNN_LSTM + "  lstm_pool: mean\nplateau:\n  patience: 10\n")
    assert config_changes(job, run_cfg)(str(conf)) == {"model_conf.lstm_pool": ("last", "mean"),
                                                      "plateau.patience": (5, 10)}
    assert config_ref(conf, recipe, changes) == \
        f"{link} (changed since the run: model_conf.lstm_pool last → mean, plateau.patience 5 → 10)"
    # gone from the recipe: the file the lookup reads now, and how it differs
    assert config_ref(recipe / "conf" / "train_cnn_lstm.yaml", recipe, changes) == (
        f"`conf/train_cnn_lstm.yaml` (not in this checkout; the recipe now reads {link}, "
        "changed since the run: model_conf.lstm_pool last → mean, plateau.patience 5 → 10)")


def test_config_ref_finds_the_shipped_config_that_holds_a_gone_candidates_settings(tmp_path):
    from ser.eval.report.environment import config_changes
    recipe = tmp_path / "main" / "egs" / "emodb"
    recipe.mkdir(parents=True)
    candidate = tmp_path / "run-x" / "egs" / "TEMPLATE" / "conf" / "pat10" / "train_cnn_lstm.yaml"
    candidate.parent.mkdir(parents=True)
    candidate.write_text(CNN_LSTM + "plateau:\n  patience: 10\n")
    run_cfg = _resolved(candidate, "--augmentation", "none", "--mixup", "false")
    job = JOB.format(config=candidate)
    shipped = tmp_path / "main" / "egs" / "TEMPLATE" / "conf" / "train_cnn_lstm.yaml"
    shipped.parent.mkdir(parents=True)
    shipped.write_text(CNN_LSTM)          # other settings: not named
    changes = config_changes(job, run_cfg)
    assert config_ref(candidate, recipe, changes) == f"`{candidate}` (not in this checkout)"
    shipped.write_text(CNN_LSTM + "plateau:\n  patience: 10   # adopted\n")
    assert config_ref(candidate, recipe, changes) == (
        f"`{candidate}` (not in this checkout; the same settings: "
        "[../TEMPLATE/conf/train_cnn_lstm.yaml](../TEMPLATE/conf/train_cnn_lstm.yaml))")


def test_config_changes_makes_no_claim_it_cannot_back(tmp_path):
    from ser.eval.report.environment import config_changes
    conf = tmp_path / "train_cnn_lstm.yaml"
    conf.write_text(CNN_LSTM)
    run_cfg = _resolved(conf, "--mixup", "true")
    job = JOB.format(config=conf).replace("--augmentation none --mixup false", "--mixup true")
    assert config_changes(job, run_cfg)(str(conf)) == {}            # the command line's mixup is the run's
    # keys the trainer gained after the run (here: precision) read as their defaults
    old = {k: v for k, v in run_cfg.items() if k != "precision"}
    assert config_changes(job, old)(str(conf)) == {}
    assert config_changes(job, {**run_cfg, "removed_option": 1})(str(conf)) is None
    assert config_changes("# python3 -m ser.bin.score --model-dir x", run_cfg)(str(conf)) is None
    assert config_changes(job, run_cfg)(str(tmp_path / "gone.yaml")) is None
    conf.write_text("model: cnn_lstm\nplateau: {patience: -1}\n")   # a file the trainer refuses today
    assert config_changes(job, run_cfg)(str(conf)) is None


def test_job_config_path_of_a_score_archive_names_this_checkouts_recipe_file(tmp_path):
    """A relative --config of an archived run (results/NAME/scores/<corpus>/exp/<set>, which holds
    no conf/) is the file of this checkout's egs/<corpus>; a recipe's own exp reads its own."""
    from ser.eval.report.environment import job_config_path
    recipe = tmp_path / "main" / "egs" / "emodb"
    (recipe / "conf" / "paper_bf16").mkdir(parents=True)
    (recipe / "conf" / "paper_bf16" / "train_densenet.yaml").write_text("x: 1\n")
    out_dir = recipe / "results" / "robust_2026-12-03"
    archive_exp = out_dir / "scores" / "emodb" / "exp" / "all4"
    archive_exp.mkdir(parents=True)
    rel_conf = "conf/paper_bf16/train_densenet.yaml"

    assert job_config_path(str(recipe / "exp" / "all4"), rel_conf, str(recipe)) == str(recipe / rel_conf)
    got = job_config_path(str(archive_exp), rel_conf, str(out_dir))
    assert got == str(recipe / rel_conf)
    assert config_ref(got, out_dir) == \
        "[../../conf/paper_bf16/train_densenet.yaml](../../conf/paper_bf16/train_densenet.yaml)"
    # absolute paths as the job gave them; a file in neither place: the archive's own path
    assert job_config_path(str(archive_exp), "/x/train.yaml", str(out_dir)) == "/x/train.yaml"
    assert job_config_path(str(archive_exp), "conf/gone.yaml", str(out_dir)) == \
        str(out_dir / "scores" / "emodb" / "conf" / "gone.yaml")
    # an experiment dir without an `exp` component: <recipe>/<dir>/<data set>
    assert job_config_path(str(tmp_path / "r" / "runs" / "all"), rel_conf, str(out_dir)) == \
        str(tmp_path / "r" / rel_conf)
