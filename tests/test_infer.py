"""infer.py on real EmoDB wavs against posteriors computed from the same building blocks."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from eval_helpers import make_model_dir
from ser.bin import infer
from ser.errors import SerError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMOTIONS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]


@pytest.fixture
def model_and_wavs(tmp_path, emodb_dir):
    from ser.features import build_extractor, read_feats_config
    from ser.training.normalization import compute_stats

    # The recipe's spec config with 64 bins: a model trained on other features than the default
    # ones, so infer must take the extractor from the model's meta.
    conf = dict(read_feats_config(os.path.join(REPO, "egs", "TEMPLATE", "conf", "feats", "spec.yaml")), num_bins=64)
    wavs = [str(emodb_dir / "wav" / "03a01Wa.wav"), str(emodb_dir / "wav" / "08a01Lc.wav")]
    extract = build_extractor(conf)
    feats = {w: extract(*sf.read(w, dtype="float32")) for w in wavs}
    mean, std = compute_stats(feats.values())
    make_model_dir(str(tmp_path / "model"), 64, EMOTIONS, feat_conf=conf, cmvn=(mean, std), seed=2,
                   segment=(64, 32))
    return str(tmp_path / "model"), wavs, feats


def test_infer_matches_score_style_posteriors(model_and_wavs, capsys):
    from ser.training.inference import utterance_posteriors
    from ser.training.model_io import load_model

    model_dir, wavs, feats = model_and_wavs
    model, meta = load_model(model_dir, "cpu")
    assert meta["feat_dim"] == 64 and next(iter(feats.values())).shape == (198, 64)
    ref = utterance_posteriors(model, meta, feats, "cpu")

    assert infer.main(["--model-dir", model_dir, "--json"] + wavs) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["file"] for o in out] == wavs
    for o in out:
        p = np.array([o["posteriors"][c] for c in EMOTIONS])
        assert p.sum() == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(p, ref[o["file"]], atol=1e-6)
        assert o["prediction"] == EMOTIONS[int(ref[o["file"]].argmax())]

    assert infer.main(["--model-dir", model_dir] + wavs) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line, w in zip(lines, wavs):
        name, pred, scores = line.split("\t")
        assert name == w and pred == EMOTIONS[int(ref[w].argmax())]
        assert scores == " ".join(f"{c}={p:.2f}" for c, p in zip(EMOTIONS, ref[w]))


def test_infer_bad_inputs_are_reported_and_the_others_classified(model_and_wavs, tmp_path):
    """A missing file, a directory and a non-audio file are each named; the good file is still
    classified; the exit status is 1 with one final line naming the bad inputs."""
    model_dir, wavs, _ = model_and_wavs
    missing = str(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    r = subprocess.run([sys.executable, "-m", "ser.bin.infer", "--model-dir", model_dir,
                        missing, str(tmp_path), wavs[0], str(bad)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1
    assert [l.split("\t")[0] for l in r.stdout.splitlines()] == [wavs[0]]
    err = r.stderr.splitlines()
    assert len(err) == 4, r.stderr
    assert f"no such audio file: {missing}" in err[0]
    assert f"{tmp_path}: is a directory, not an audio file" in err[1]
    assert f"cannot read audio '{bad}'" in err[2]
    assert "error: 3 of 4 inputs not classified" in err[3] and missing in err[3] and str(bad) in err[3]
    with pytest.raises(SerError, match="1 of 1 inputs not classified"):
        infer.main(["--model-dir", model_dir, str(bad)])


def test_infer_wav_scp_and_model_dir_errors(model_and_wavs, tmp_path, capsys):
    model_dir, wavs, _ = model_and_wavs
    scp = tmp_path / "wav.scp"
    scp.write_text(f"u1 {wavs[0]}\nu2 {wavs[1]}\n")
    assert infer.main(["--model-dir", model_dir, "--wav-scp", str(scp)]) == 0
    assert [l.split("\t")[0] for l in capsys.readouterr().out.splitlines()] == ["u1", "u2"]
    with pytest.raises(SerError, match="no input"):
        infer.main(["--model-dir", model_dir])
    with pytest.raises(SerError, match=f"no such model directory: {tmp_path}/none"):
        infer.main(["--model-dir", str(tmp_path / "none"), wavs[0]])
    exp = tmp_path / "exp_tag"
    (exp / "fold.1" / "seed1").mkdir(parents=True)
    with pytest.raises(SerError, match="experiment dir of fold models without a packed model"):
        infer.main(["--model-dir", str(exp), wavs[0]])
