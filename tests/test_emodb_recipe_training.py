"""Integration: stages 0-5 of egs/emodb on four EmoDB speakers with tiny settings."""
import json
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


def make_tiny_recipe(tmp_path, emodb_dir):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    corpus = fake_emodb(emodb_dir, tmp_path / "corpus", SPEAKERS)
    tiny = recipe / "conf" / "tiny"
    tiny.mkdir()
    for model, conf in TINY.items():
        (tiny / f"train_{model}.yaml").write_text(f"model: {model}\n{conf}{SCHEDULE}")
    (recipe / "conf" / "folds.yaml").write_text('pairs: ["03:08", "09:10"]\n')
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
    rows = [l for l in results.splitlines() if l.startswith("|") and re.search(r"\d+\.\d ± \d+\.\d", l)]
    assert any("cnn" in l for l in rows) and any("densenet_lstm_highway" in l for l in rows)

    # A second run skips everything: trained and scored folds are not redone.
    r = subprocess.run(["./run.sh", *args, "--stage", "2"], cwd=recipe, env=dict(script_env, EMODB=str(corpus)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Stage 2: skipped" in r.stdout
    logs = "".join(p.read_text() for p in (exp / tags[0] / "log").glob("train.seed1.*.log"))
    assert "already trained" in logs
