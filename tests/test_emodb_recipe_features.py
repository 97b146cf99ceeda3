"""Integration: stages 0-1 of egs/emodb on two speakers of the shared EmoDB copy."""
import subprocess

import kaldiio
import numpy as np
import yaml

from conftest import REPO, copy_recipe, fake_emodb
from corpus_fixtures import read_table

SPEAKERS = ("03", "08")


def run(recipe, env, *args):
    return subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)


def test_stages_0_1_produce_data_and_features_and_rerun_is_a_noop(tmp_path, emodb_dir, script_env):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    corpus = fake_emodb(emodb_dir, tmp_path / "corpus", SPEAKERS)
    env = dict(script_env, EMODB=str(corpus))
    n_files = len(list((corpus / "wav").iterdir()))

    r = run(recipe, env, "--stage", "0", "--stop_stage", "1", "--nj", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Stage 0: data preparation" in r.stdout and "Stage 1: feature extraction (spec" in r.stdout

    data = recipe / "data" / "all"
    utt2spk = read_table(data / "utt2spk")
    assert len(utt2spk) == n_files
    assert set(utt2spk.values()) == set(SPEAKERS)
    utt2emo = read_table(data / "utt2emo")
    assert utt2emo["03-03a01Fa"] == "happiness" and utt2emo["08-08a01Na"] == "neutral"
    assert read_table(data / "text")["03-03a01Fa"] == "Der Lappen liegt auf dem Eisschrank."
    assert list(utt2spk) == sorted(utt2spk)

    for feat, dim, sr, hop in (("spec", 128, 16000, 160), ("mel", 80, 22050, 256)):
        fdir = recipe / "data" / f"all_{feat}"
        feats = dict(kaldiio.load_scp(str(fdir / "feats.scp")))
        assert sorted(feats) == sorted(utt2spk)
        mat = feats["03-03a01Fa"]
        assert mat.shape[1] == dim and np.isfinite(mat).all()
        # 2.0 s of audio at the feature's rate and hop gives about 2.0 * sr / hop frames.
        assert abs(mat.shape[0] - 2.0 * sr / hop) <= 4
        assert yaml.safe_load(open(fdir / "conf.yaml"))["type"] == feat
    assert np.abs(feats["03-03a01Fa"]).max() <= 1.0  # mel is scaled into [-1, 1]

    r = run(recipe, env, "--stage", "0", "--stop_stage", "1", "--nj", "2")
    assert r.returncode == 0, r.stderr
    assert "Stage 0: skipped" in r.stdout
    assert r.stdout.count("Stage 1: skipped") == 2

    # notes and docs in local/ are not data preparation: editing them redoes nothing
    for doc in ("results_note.md", "results_note.txt", "corpus_note.txt", "README.md"):
        with open(recipe / "local" / doc, "a") as f:
            f.write("\nedited\n")
    r = run(recipe, env, "--stage", "0", "--stop_stage", "1", "--nj", "2")
    assert r.returncode == 0, r.stderr
    assert "Stage 0: skipped" in r.stdout and r.stdout.count("Stage 1: skipped") == 2
    # what data preparation reads is: an edited local/ program redoes the data dir
    with open(recipe / "local" / "prepare_emodb.py", "a") as f:
        f.write("\n# edited\n")
    r = run(recipe, env, "--stage", "0", "--stop_stage", "0")
    assert r.returncode == 0 and "Stage 0: data preparation" in r.stdout, r.stdout + r.stderr


def test_changed_feature_config_recomputes(tmp_path, emodb_dir, script_env):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    corpus = fake_emodb(emodb_dir, tmp_path / "corpus", ("03",))
    env = dict(script_env, EMODB=str(corpus))
    assert run(recipe, env, "--stop_stage", "1", "--feats", "spec").returncode == 0
    # the recipe's own feature config, in place of the shared egs/TEMPLATE/conf/feats/spec.yaml
    conf = recipe / "conf" / "feats" / "spec.yaml"
    conf.parent.mkdir()
    conf.write_text((REPO / "egs" / "TEMPLATE" / "conf" / "feats" / "spec.yaml").read_text() + "\n# edited\n")
    r = run(recipe, env, "--stop_stage", "1", "--feats", "spec")
    assert r.returncode == 0 and "Stage 1: feature extraction (spec" in r.stdout


def test_missing_corpus_is_a_one_line_error(tmp_path, script_env):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    r = run(recipe, dict(script_env, EMODB=str(tmp_path / "nowhere")), "--stop_stage", "0")
    assert r.returncode != 0
    err = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and "EMODB=" in err[0] and "nowhere" in err[0]
    assert not (recipe / "data" / "all").exists()


def test_empty_wav_is_named(tmp_path, emodb_dir, script_env):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    corpus = fake_emodb(emodb_dir, tmp_path / "corpus", ("03",))
    (corpus / "wav" / "03a01Wa.wav").unlink()
    (corpus / "wav" / "03a01Wa.wav").write_bytes(b"")
    r = run(recipe, dict(script_env, EMODB=str(corpus)), "--stop_stage", "0")
    assert r.returncode != 0
    assert "03a01Wa.wav" in r.stderr
    assert not (recipe / "data" / "all").exists() and not (recipe / "data" / "all.tmp").exists()


def test_unknown_option_is_named(tmp_path, script_env):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    r = run(recipe, script_env, "--no-such-option", "1")
    assert r.returncode != 0 and "--no-such-option" in r.stderr


def test_bad_test_condition_or_augmentation_fails_before_any_stage(tmp_path, script_env):
    recipe = copy_recipe("emodb", tmp_path / "emodb")
    env = dict(script_env, EMODB=str(tmp_path / "nowhere"))
    for option, value, message in (
            ("--conditions", "clean snr0 foo", "unknown test condition 'foo'"),
            ("--conditions", "clean bim_eps0.0x", "attack radius '0.0x' is not a number"),
            ("--augs", "none sp_mixup", "unknown augmentation 'sp_mixup'")):
        r = run(recipe, env, option, value)
        assert r.returncode == 1 and message in r.stderr, r.stderr
        assert "Stage 0" not in r.stdout and not (recipe / "data").exists()
