"""Per-utterance mean/variance normalisation (config utterance_mvn): the transform on known
matrices, the config (absent while off, so earlier experiment tags stay), and a trained model that
applies it in inference."""
import os
import subprocess
import sys

import numpy as np
import pytest

from ser.errors import SerError
from ser.training import config as C
from ser.training.dataset import load_fold, prepare
from ser.training.inference import utterance_posteriors
from ser.training.model_io import load_model
from ser.training.normalization import utterance_mvn

from test_train_program import toy_config_resolver, train_toy
from training_toy import make_corpus

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def padded_utterance(seed=0):
    """12 frames of signal with per-dimension offsets, then 6 frames of digital silence (every
    bin at the floor -1, as zero padding comes out of the scaled log-mel)."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(loc=[2.0, -1.0, 0.5], scale=[1.0, 3.0, 0.2], size=(12, 3))
    return np.vstack([signal, np.full((6, 3), -1.0)]).astype(np.float32), signal


def test_means_are_those_of_the_frames_with_signal():
    mat, signal = padded_utterance()
    out = utterance_mvn(mat, means=True)
    mu = signal.mean(axis=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, mat - mu, atol=1e-5)           # every frame shifted, padding too
    np.testing.assert_allclose(out[:12].mean(axis=0), 0.0, atol=1e-5)
    # the padding does not move the statistics: the same signal without it gives the same frames
    np.testing.assert_allclose(utterance_mvn(signal, means=True), out[:12], atol=1e-5)


def test_variances_scale_the_frames_with_signal_to_unit_std():
    mat, signal = padded_utterance(1)
    out = utterance_mvn(mat, means=True, vars=True)
    np.testing.assert_allclose(out, (mat - signal.mean(axis=0)) / signal.std(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[:12].std(axis=0), 1.0, rtol=1e-4)
    only_vars = utterance_mvn(mat, vars=True)
    np.testing.assert_allclose(only_vars, mat / signal.std(axis=0), rtol=1e-4, atol=1e-5)


def test_off_returns_the_matrix_and_silence_alone_uses_every_frame():
    mat, _ = padded_utterance(2)
    np.testing.assert_array_equal(utterance_mvn(mat), mat)
    silent = np.full((5, 3), -1.0, np.float32)
    np.testing.assert_array_equal(utterance_mvn(silent, means=True), np.zeros((5, 3), np.float32))
    with pytest.raises(SerError, match="utterance_mvn needs"):
        utterance_mvn(np.zeros((0, 3), np.float32), means=True)


def test_prepare_normalises_each_utterance_before_the_training_statistics(tmp_path):
    corpus = make_corpus(str(tmp_path))
    fold = load_fold(corpus["data"], corpus["fold"], corpus["classes"])
    prepared = prepare(fold, 512, 256, {"means": True, "vars": False})
    # the training statistics are those of the utterance-normalised matrices: mean 0 in every
    # dimension (each utterance's own mean is 0 already)
    np.testing.assert_allclose(prepared.cmvn_mean, 0.0, atol=1e-5)
    utt = sorted(fold.valid)[0]
    mat = fold.valid[utt]
    expected = (mat - mat.mean(axis=0) - prepared.cmvn_mean) / prepared.cmvn_std
    got = prepared.valid_segments[utt][0][:len(mat)]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # without the option the training mean is the data's (offset 3 plus the class offsets)
    assert prepare(fold, 512, 256).cmvn_mean.mean() > 2.5


def test_config_leaves_the_option_out_while_it_is_off(tmp_path):
    resolved = toy_config_resolver(tmp_path)
    default = resolved()
    assert "utterance_mvn" not in default
    assert C.config_hash(resolved("utterance_mvn.means=false")) == C.config_hash(default)
    means = resolved("utterance_mvn.means=true")
    both = resolved("utterance_mvn.means=true", "utterance_mvn.vars=true")
    assert means["utterance_mvn"] == {"means": True, "vars": False}
    assert len({C.config_hash(default), C.config_hash(means), C.config_hash(both)}) == 3
    with pytest.raises(SerError, match="'utterance_mvn.means' must be true or false"):
        resolved("utterance_mvn.means=3")


def test_committed_experiment_tags_keep_their_hash():
    """The EmoDB Table 1 tags of egs/emodb/RESULTS.md (conf/paper_bf16 densenet, TEMPLATE
    conf/paper_bf16_pat10_mean cnn_lstm), as stage 3 of run.sh hashes them: an option added to the
    trainer must not rename the experiments that were run before it."""
    egs = os.path.join(REPO, "egs", "emodb")
    common = ["--feats-dir", "data/all_mel", "--fold-dir", "data/all_folds/1", "--classes",
              "data/all_folds/classes.txt", "--augmentation", "none", "--mixup", "false", "--print-config-hash"]
    for conf, tag in (("conf/paper_bf16/train_densenet.yaml", "98763965"),
                      ("../TEMPLATE/conf/paper_bf16_pat10_mean/train_cnn_lstm.yaml", "3aa00deb")):
        proc = subprocess.run([sys.executable, "-m", "ser.bin.train", "--config", conf] + common, cwd=egs,
                              env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == tag, conf


def test_a_trained_model_ignores_a_constant_offset_of_an_utterance(tmp_path):
    corpus, outdir, proc = train_toy(tmp_path, ["--max-epochs", "2", "--set", "utterance_mvn.means=true"],
                                     offset_scale=0.25)
    assert proc.returncode == 0, proc.stderr
    model, meta = load_model(str(outdir / "model.pt"))
    assert meta["utterance_mvn"] == {"means": True, "vars": False}
    test = {u: corpus["mats"][u] for u in corpus["lists"]["test"]}
    shift = np.linspace(-3.0, 3.0, test[next(iter(test))].shape[1]).astype(np.float32)
    shifted = {u: m + shift for u, m in test.items()}
    post, post_shifted = (utterance_posteriors(model, meta, feats, "cpu") for feats in (test, shifted))
    for u in test:
        np.testing.assert_allclose(post_shifted[u], post[u], atol=1e-5)
    # a model that does not normalise each utterance sees the offset
    meta_off = dict(meta, utterance_mvn={"means": False, "vars": False})
    off, off_shifted = (utterance_posteriors(model, meta_off, feats, "cpu") for feats in (test, shifted))
    assert max(np.abs(off_shifted[u] - off[u]).max() for u in test) > 1e-3
