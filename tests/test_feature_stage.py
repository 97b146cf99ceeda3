"""Stage 1 of the recipes computes the feature types later stages read, in one make_feats.sh call."""
import subprocess

import kaldiio
import numpy as np

from conftest import REPO, copy_recipe, fake_emodb


def run(recipe, env, *args):
    return subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)


def extraction_lines(stdout):
    return [l.split(" ", 2)[2] for l in stdout.splitlines() if "Stage 1: feature extraction" in l]


def test_copies_get_the_classifier_feature_only_in_one_call(tmp_path, emodb_dir, script_env):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    env = dict(script_env, EMODB=str(fake_emodb(emodb_dir, tmp_path / "corpus", ("03",))))

    r = run(recipe, env, "--stop_stage", "1", "--augs", "none sp")
    assert r.returncode == 0, r.stdout + r.stderr
    # one extraction for every output: the data gets --feats (spec mel), its copies $feat (spec)
    assert extraction_lines(r.stdout) == [
        "Stage 1: feature extraction (spec mel, nj=2, make_feats.sh): data/all -> data/all_spec data/all_mel; "
        "data/all_sp0.9 -> data/all_sp0.9_spec; data/all_sp1.1 -> data/all_sp1.1_spec"]
    data = recipe / "data"
    assert sorted(p.name for p in data.iterdir()) == \
        ["all", "all_mel", "all_sp0.9", "all_sp0.9_spec", "all_sp1.1", "all_sp1.1_spec", "all_spec"]
    # the same matrices as make_feats.sh on that copy alone
    spec_conf = str(REPO / "egs" / "TEMPLATE" / "conf" / "feats" / "spec.yaml")   # the shared one
    r2 = subprocess.run(["bash", "utils/make_feats.sh", "--nj", "1", "--config", spec_conf,
                         "data/all_sp1.1", str(tmp_path / "alone"), str(tmp_path / "alone_feats")],
                        cwd=recipe, env=env, capture_output=True, text=True)
    assert r2.returncode == 0, r2.stderr
    one = dict(kaldiio.load_scp(str(data / "all_sp1.1_spec" / "feats.scp")))
    alone = dict(kaldiio.load_scp(str(tmp_path / "alone" / "feats.scp")))
    assert list(one) == list(alone) and len(one) == 49
    for utt in one:
        np.testing.assert_array_equal(one[utt], alone[utt])

    r = run(recipe, env, "--stop_stage", "1", "--augs", "none sp")
    assert r.returncode == 0 and extraction_lines(r.stdout) == []
    assert r.stdout.count("Stage 1: skipped: data/all_") == 6  # 2 copies + 4 feature dirs

    # Classifiers on mel: the copies need mel now; what exists is skipped.
    r = run(recipe, env, "--stage", "1", "--stop_stage", "1", "--augs", "sp", "--feat", "mel", "--feats", "spec")
    assert r.returncode == 0, r.stdout + r.stderr
    assert extraction_lines(r.stdout) == [
        "Stage 1: feature extraction (mel, nj=2, make_feats.sh): "
        "data/all_sp0.9 -> data/all_sp0.9_mel; data/all_sp1.1 -> data/all_sp1.1_mel"]
    assert "Stage 1: skipped: data/all_mel is complete" in r.stdout  # the classifier's input
    assert "Stage 1: skipped: data/all_spec is complete" in r.stdout  # --feats spec


def test_synthetic_settings_get_mel_whatever_feats_says(tmp_path, emodb_dir, script_env):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    env = dict(script_env, EMODB=str(fake_emodb(emodb_dir, tmp_path / "corpus", ("03",))))
    r = run(recipe, env, "--stop_stage", "1", "--feats", "spec", "--augs", "real+syn")
    assert r.returncode == 0, r.stdout + r.stderr
    assert extraction_lines(r.stdout) == [
        "Stage 1: feature extraction (spec mel, nj=2, make_feats.sh): data/all -> data/all_spec data/all_mel"]
