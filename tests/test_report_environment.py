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
