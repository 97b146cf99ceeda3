"""From a finished run to a usable model: stage 6 packs the fold models of a tiny EmoDB run, the
packed model reproduces stage 4's posteriors, and `EmotionClassifier` and `ser-infer` agree.
The same run checks the training curves and RESULTS.md's environment block."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO
from ser.eval.scoring import read_predictions
from test_emodb_recipe_training import make_tiny_recipe


@pytest.fixture(scope="module")
def packed_run(tmp_path_factory, emodb_dir):
    tmp = tmp_path_factory.mktemp("pack")
    recipe, corpus = make_tiny_recipe(tmp, emodb_dir)
    env = dict(os.environ, EMODB=str(corpus), LC_ALL="C",
               PATH=os.pathsep.join([str(REPO / "utils"), os.path.dirname(sys.executable), os.environ["PATH"]]))
    args = ["--feats", "spec", "--conf_dir", "conf/tiny", "--models", "cnn", "--conditions", "clean"]
    r = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (exp,) = (recipe / "exp" / "all").glob("spec_cnn_none_*")
    return recipe, exp, env, args, r.stdout


def test_stage6_packs_the_fold_ensemble(packed_run):
    recipe, exp, env, args, stdout = packed_run
    assert "Stage 6: packing cnn (none)" in stdout
    packed = exp / "packed"
    pack = json.loads((packed / "pack.json").read_text())
    assert pack["members"] == [f"models/fold.{k}.seed1.pt" for k in range(1, 5)]
    for name in ("feats.yaml", "classes.txt", "normalization.json", "config.yaml", "README.md"):
        assert (packed / name).is_file(), name
    assert (packed / "classes.txt").read_text().split() == pack["classes"]
    # the card's LOSO UAR is the mean of the folds' stage-4 UARs (one seed: over folds)
    uars = [json.loads((exp / f"fold.{k}" / "seed1" / "test_clean" / "metrics.json").read_text())["uar"]
            for k in range(1, 5)]
    assert pack["loso"]["uar_mean"] == pytest.approx(np.mean(uars))
    card = (packed / "README.md").read_text()
    assert f"UAR {100 * np.mean(uars):.1f} ±" in card and "averages the members'" in card
    assert "EmoDB (2.0 s copy" in card and "from_dir" in card and "ser-infer" in card
    # every training run drew its curves next to history.tsv
    for k in range(1, 5):
        assert (exp / f"fold.{k}" / "seed1" / "history.png").read_bytes()[:4] == b"\x89PNG"
    # RESULTS.md: environment block with the runs' device, threads, precision and config link
    results = (recipe / "RESULTS.md").read_text()
    env_block = results.split("## Environment\n", 1)[1].split("\n## ", 1)[0]
    assert "python 3." in env_block and "torch " in env_block
    assert "device cpu" in env_block and "threads per job 1" in env_block and "precision fp32" in env_block
    assert "[conf/tiny/train_cnn.yaml](conf/tiny/train_cnn.yaml)" in env_block

    # a re-run skips the complete pack and says so
    r = subprocess.run(["./run.sh", *args, "--stage", "6"], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "already packed" in r.stdout


def test_pack_takes_an_experiment_dir_relative_to_the_working_dir(packed_run, tmp_path):
    """`--exp-dir <tag>` from exp/all: the same experiment as the absolute path."""
    recipe, exp, env, args, stdout = packed_run
    out = tmp_path / "packed_relative"
    r = subprocess.run([sys.executable, "-m", "ser.bin.pack", "--exp-dir", exp.name, "--out", str(out)],
                       cwd=exp.parent, env=dict(env, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "pack.json").read_text())["loso"] == json.loads((exp / "packed" / "pack.json").read_text())["loso"]


def test_packed_model_reproduces_stage4_posteriors(packed_run):
    from ser import EmotionClassifier
    from ser.data.kvfile import read_kv

    recipe, exp, _, _, _ = packed_run
    clf = EmotionClassifier.from_dir(exp / "packed")
    assert len(clf.members) == 4
    wav_scp = read_kv(recipe / "data" / "all" / "wav.scp")
    for k in range(1, 5):
        utts, _, _, post, classes = read_predictions(exp / f"fold.{k}" / "seed1" / "test_clean" / "predictions.tsv")
        assert classes == clf.classes
        feats = {u: clf.entry_features(wav_scp[u]) for u in utts}
        members = clf.member_posteriors(feats)
        # member k is fold k's model: from the audio, its posteriors are stage 4's (6 decimals)
        np.testing.assert_allclose(np.stack([members[k - 1][u] for u in utts]), post, atol=1e-6)
        ensemble = clf.posteriors(feats)
        for u in utts:
            np.testing.assert_allclose(ensemble[u], np.mean([m[u] for m in members], axis=0), rtol=0, atol=1e-12)


def test_api_and_command_agree(packed_run, tmp_path):
    from ser import EmotionClassifier

    recipe, exp, env, _, _ = packed_run
    wavs = sorted(str(p) for p in (recipe.parent / "corpus" / "wav").iterdir())[:3]
    clf = EmotionClassifier.from_dir(exp / "packed")
    api = [clf.classify_file(w) for w in wavs]
    # classify_batch on the waveforms at the file's rate: the same posteriors
    waves = [sf.read(w, dtype="float32")[0] for w in wavs]
    rate = sf.info(wavs[0]).samplerate
    for a, b in zip(api, clf.classify_batch(waves, rate)):
        assert a.label == b.label
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-6)

    exe = shutil.which("ser-infer", path=os.path.dirname(sys.executable))
    assert exe, "the ser-infer entry point is not installed (pip install -e .)"
    # the experiment dir stands for its packed model
    r = subprocess.run([exe, "--model-dir", str(exp), "--json", *wavs], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [o["file"] for o in out] == wavs
    for o, a in zip(out, api):
        assert o["prediction"] == a.label and o["posteriors"] == a.probabilities
    r = subprocess.run([exe, "--model-dir", str(exp / "packed"), wavs[0]], capture_output=True, text=True, env=env)
    assert r.stdout.split("\t")[:2] == [wavs[0], api[0].label]


def test_hub_ids_go_through_huggingface_hub(packed_run, monkeypatch):
    """An argument that is no local path and looks like owner/name is downloaded (offline here:
    the download is replaced by the local packed dir)."""
    import ser.api as api

    _, exp, _, _, _ = packed_run
    asked = []
    monkeypatch.setattr(api, "_hub_available", lambda: True)
    monkeypatch.setattr(api, "_download", lambda repo_id, revision=None: asked.append(repo_id) or str(exp / "packed"))
    clf = api.EmotionClassifier.from_dir("someone/emodb-ser")
    assert asked == ["someone/emodb-ser"] and len(clf.members) == 4
    monkeypatch.setattr(api, "_hub_available", lambda: False)
    with pytest.raises(api.SerError, match="no such model directory: someone/emodb-ser"):
        api.EmotionClassifier.from_dir("someone/emodb-ser")
