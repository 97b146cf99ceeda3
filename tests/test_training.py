"""Unit tests of ser/training: normalisation, plateau, mixup, config, data loading, inference,
and bit-identical resumption of the training loop."""
import copy
import math
import os

import numpy as np
import pytest
import torch

from ser.errors import SerError
from ser.runtime.checkpoint import load_checkpoint, seed_everything
from ser.runtime.config import canonical
from ser.runtime.segments import segment_matrix
from ser.training import config as C
from ser.training import normalization
from ser.training.dataset import load_fold, prepare
from ser.training.inference import prepare_segments, segment_posteriors, utterance_posteriors
from ser.training.mixup import mixup_batch, soft_cross_entropy
from ser.training.model_io import read_model_file, save_model
from ser.training.plateau import Plateau
from ser.training.trainer import Trainer, epoch_batches

from training_toy import CLASSES, DIM, TinyNet, make_aug_dir, make_corpus, reference_segments


# --- normalisation and data loading ---------------------------------------------------------
def test_compute_stats_matches_numpy():
    rng = np.random.default_rng(0)
    mats = [rng.normal(loc=100.0, scale=s, size=(n, 4)) for n, s in ((10, 1.0), (37, 3.0), (5, 0.1))]
    mean, std = normalization.compute_stats(mats)
    allf = np.concatenate(mats)
    np.testing.assert_allclose(mean, allf.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, allf.std(0), rtol=1e-5)
    x = normalization.apply(mats[1], mean, std)
    np.testing.assert_allclose(x, (mats[1] - allf.mean(0)) / allf.std(0), rtol=1e-4, atol=1e-4)
    # a constant dimension does not divide by zero
    _, std0 = normalization.compute_stats([np.ones((5, 2))])
    assert np.all(std0 > 0)


def test_normalisation_uses_train_only(tmp_path):
    corpus = make_corpus(str(tmp_path / "a"))
    aug_dir, aug_mats = make_aug_dir(str(tmp_path / "a"), "aug", corpus, corpus["lists"]["train"])
    fold = load_fold(corpus["data"], corpus["fold"], corpus["classes"], [aug_dir])
    prep = prepare(fold, 64, 32)
    train_frames = np.concatenate([corpus["mats"][u] for u in corpus["lists"]["train"]] + list(aug_mats.values()))
    np.testing.assert_allclose(prep.cmvn_mean, train_frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(prep.cmvn_std, train_frames.std(0), rtol=1e-5)
    # the same corpus with very different valid/test matrices gives the same statistics
    corpus_b = make_corpus(str(tmp_path / "b"))
    from training_toy import write_feats
    changed = dict(corpus_b["mats"])
    for u in corpus_b["lists"]["valid"] + corpus_b["lists"]["test"]:
        changed[u] = changed[u] * 10 + 50
    write_feats(corpus_b["data"], changed)
    aug_b, _ = make_aug_dir(str(tmp_path / "b"), "aug", corpus_b, corpus_b["lists"]["train"])
    prep_b = prepare(load_fold(corpus_b["data"], corpus_b["fold"], corpus_b["classes"], [aug_b]), 64, 32)
    np.testing.assert_array_equal(prep.cmvn_mean, prep_b.cmvn_mean)
    np.testing.assert_array_equal(prep.cmvn_std, prep_b.cmvn_std)
    # ... while the normalised valid segments do change
    u = corpus["lists"]["valid"][0]
    assert not np.allclose(prep.valid_segments[u], prep_b.valid_segments[u])


def test_load_fold_labels_and_aug(tmp_path):
    corpus = make_corpus(str(tmp_path))
    train = corpus["lists"]["train"]
    aug_dir, _ = make_aug_dir(str(tmp_path), "aug", corpus, train[:5])
    fold = load_fold(corpus["data"], corpus["fold"], corpus["classes"], [aug_dir])
    assert fold.classes == CLASSES and fold.feat_dim == DIM and fold.feat_conf == {"type": "toy", "dim": 16}
    assert set(fold.train) == set(train) | {f"sp1.1-{u}" for u in train[:5]}
    assert set(fold.valid) == set(corpus["lists"]["valid"])
    for u in train:
        assert fold.train_labels[u] == corpus["labels"][u]
        np.testing.assert_array_equal(fold.train[u], corpus["mats"][u])
    for u in train[:5]:
        assert fold.train_labels[f"sp1.1-{u}"] == corpus["labels"][u]
        assert fold.train_source[f"sp1.1-{u}"] == u
    # the segments of the training set are those of segment_matrix on the normalised matrices
    prep = prepare(fold, 64, 32)
    expected = sum(len(segment_matrix(m, 64, 32)) for m in fold.train.values())
    assert len(prep.train_set) == expected
    x0, y0 = prep.train_set[0]
    first = list(fold.train)[0]
    np.testing.assert_allclose(x0.numpy(), segment_matrix(
        normalization.apply(fold.train[first], prep.cmvn_mean, prep.cmvn_std), 64, 32)[0])
    assert y0 == fold.train_labels[first]


def test_load_fold_refuses_leaks(tmp_path):
    corpus = make_corpus(str(tmp_path))
    train, test = corpus["lists"]["train"], corpus["lists"]["test"]
    # a copy of a test utterance in an aug dir: refused, naming the copy
    bad_dir, _ = make_aug_dir(str(tmp_path), "bad", corpus, train[:2] + test[:1])
    with pytest.raises(SerError, match=f"sp1.1-{test[0]}"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"], [bad_dir])
    # policy "select" skips it (whole-corpus aug dirs) ...
    fold = load_fold(corpus["data"], corpus["fold"], corpus["classes"], [bad_dir], aug_policy="select")
    assert f"sp1.1-{test[0]}" not in fold.train and f"sp1.1-{train[0]}" in fold.train
    # ... but not a copy whose utt2uniq claims a train source while its name is a test utterance's
    liar, _ = make_aug_dir(str(tmp_path), "liar", corpus, train[:1] + test[:1],
                           utt2uniq_override={f"sp1.1-{test[0]}": train[1]})
    for policy in ("refuse", "select"):
        with pytest.raises(SerError, match=f"sp1.1-{test[0]}"):
            load_fold(corpus["data"], corpus["fold"], corpus["classes"], [liar], aug_policy=policy)
    # a train.list utterance of the validation speaker
    with open(os.path.join(corpus["fold"], "train.list"), "a") as f:
        f.write(corpus["lists"]["valid"][0] + "\n")
    with pytest.raises(SerError, match=corpus["lists"]["valid"][0]):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"])


def test_load_fold_unknown_label(tmp_path):
    corpus = make_corpus(str(tmp_path))
    with open(corpus["classes"], "w") as f:
        f.write("anger\nneutral\n")
    with pytest.raises(SerError, match="sadness"):
        load_fold(corpus["data"], corpus["fold"], corpus["classes"])


# --- plateau --------------------------------------------------------------------------------
def test_plateau_schedule():
    scores = [0.30, 0.40, 0.40, 0.35, 0.39, 0.45, 0.44, 0.44, 0.44, 0.44, 0.44, 0.44, 0.44]
    p = Plateau(patience=2, factor=0.5, early_stop_patience=5)
    lr, lrs, improved_at, stop_at = 1.0, [], [], None
    for epoch, s in enumerate(scores, 1):
        improved, lr, stop = p.step(s, epoch, lr)
        lrs.append(lr)
        if improved:
            improved_at.append(epoch)
        if stop:
            stop_at = epoch
            break
    # ties (epoch 3) do not improve; halvings after 2 bad epochs: 4 (3,4 bad), 8 (7,8), 10 (9,10)
    assert improved_at == [1, 2, 6]
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert stop_at == 11 and p.best == 0.45 and p.best_epoch == 6
    # state round trip
    q = Plateau(patience=2, factor=0.5, early_stop_patience=5)
    q.load_state_dict(p.state_dict())
    assert q.state_dict() == p.state_dict()


def test_plateau_nan_is_not_an_improvement():
    p = Plateau(patience=1, factor=0.5, early_stop_patience=3)
    assert p.step(float("nan"), 1, 1.0) == (False, 0.5, False)


# --- mixup ----------------------------------------------------------------------------------
def test_mixup_is_convex_combination():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, 4, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 3).double()
    xm, ym, lam = mixup_batch(x, y, 0.4, g)
    assert 0.0 <= lam <= 1.0
    partners = []
    for i in range(6):
        # exactly one partner j (a permutation) with x~_i = lam x_i + (1 - lam) x_j, same for y
        js = [j for j in range(6) if torch.equal(xm[i], lam * x[i] + (1 - lam) * x[j])]
        assert len(js) == 1
        partners.append(js[0])
        assert torch.equal(ym[i], lam * y[i] + (1 - lam) * y[js[0]])
    assert sorted(partners) == list(range(6))
    np.testing.assert_allclose(ym.sum(1).numpy(), 1.0, rtol=0, atol=1e-12)
    # same generator state -> same draw
    g2 = torch.Generator().manual_seed(3)
    xm2, _, lam2 = mixup_batch(x, y, 0.4, g2)
    assert lam2 == lam and torch.equal(xm2, xm)


def test_mixup_lambda_distribution():
    g = torch.Generator().manual_seed(0)
    x, y = torch.zeros(2, 1), torch.eye(2)
    lams = np.array([mixup_batch(x, y, 1.0, g)[2] for _ in range(4000)])
    # Beta(1, 1) = U(0, 1): mean 1/2, variance 1/12
    assert abs(lams.mean() - 0.5) < 0.02
    assert abs(lams.var() - 1 / 12) < 0.01
    lams = np.array([mixup_batch(x, y, 0.2, g)[2] for _ in range(4000)])
    # Beta(0.2, 0.2): variance 1 / (4 (2 alpha + 1)) = 0.1786; mass near 0 and 1
    assert abs(lams.var() - 1 / (4 * 1.4)) < 0.015


def test_soft_cross_entropy_matches_hard_for_onehot():
    logits = torch.randn(5, 3)
    y = torch.tensor([0, 2, 1, 1, 0])
    hard = torch.nn.functional.cross_entropy(logits, y)
    soft = soft_cross_entropy(logits, torch.nn.functional.one_hot(y, 3).float())
    assert torch.allclose(hard, soft, atol=1e-6)


# --- config ---------------------------------------------------------------------------------
def test_config_unknown_key_and_overrides(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("model: cnn\noptim:\n  lr: 1e-3\n  momentum: 0.9\n")
    with pytest.raises(SerError, match=r"train.yaml.*'optim.momentum'"):
        C.load_config(str(path))
    path.write_text("model: cnn\noptim:\n  lr: 1e-3\nmodel_conf: {fc_dim: 8}\n")
    cfg = C.load_config(str(path))
    assert cfg["optim"]["lr"] == 1e-3 and cfg["batch_size"] == C.DEFAULTS["batch_size"]
    cfg = C.apply_overrides(cfg, ["mixup.enabled=true", "model_conf.conv_channels=[4, 8]", "segment.length=64"])
    assert cfg["mixup"]["enabled"] is True and cfg["segment"]["length"] == 64
    assert cfg["model_conf"] == {"fc_dim": 8, "conv_channels": [4, 8]}
    with pytest.raises(SerError, match="'segment.size'"):
        C.apply_overrides(cfg, ["segment.size=3"])
    with pytest.raises(SerError, match="batch_size"):
        C.apply_overrides(cfg, ["batch_size=0"])
    # the hash ignores seed and fold but not training keys
    a = dict(cfg, data={"feats_dir": "f", "fold_dir": "1"}, seed=1)
    b = dict(cfg, data={"feats_dir": "f", "fold_dir": "2"}, seed=2)
    c = dict(copy.deepcopy(a), batch_size=7)
    assert C.config_hash(a) == C.config_hash(b) != C.config_hash(c)
    assert canonical(a) == a


# --- inference ------------------------------------------------------------------------------
def test_utterance_posteriors_equal_mean_of_segment_softmax():
    torch.manual_seed(0)
    model = TinyNet()
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=DIM).astype(np.float32), rng.uniform(0.5, 2, size=DIM).astype(np.float32)
    meta = {"cmvn_mean": mean.tolist(), "cmvn_std": std.tolist(), "segment": {"length": 32, "shift": 16}}
    feats = {"a": rng.normal(size=(20, DIM)), "b": rng.normal(size=(75, DIM)), "c": rng.normal(size=(32, DIM))}
    post = utterance_posteriors(model, meta, feats, "cpu", batch_size=3)
    model.eval()
    for utt, mat in feats.items():
        segs = reference_segments(((mat - mean) / std).astype(np.float32), 32, 16)
        with torch.no_grad():
            manual = torch.softmax(model(torch.from_numpy(segs)), dim=-1).double().numpy().mean(0)
        np.testing.assert_allclose(post[utt], manual, rtol=1e-5)
        assert post[utt].shape == (3,) and abs(post[utt].sum() - 1) < 1e-6
        np.testing.assert_allclose(prepare_segments(meta, mat), segs, rtol=1e-5, atol=1e-6)
    # segment_posteriors restores the training mode it found
    model.train()
    segment_posteriors(model, segment_matrix(feats["a"], 32, 16), "cpu")
    assert model.training


def test_save_model_round_trip(tmp_path):
    model = TinyNet()
    meta = {"model_name": "tiny", "model_conf": {}, "num_classes": 3, "classes": CLASSES, "feat_dim": DIM,
            "segment": {"length": 32, "shift": 16}, "cmvn_mean": [0.0] * DIM, "cmvn_std": [1.0] * DIM,
            "feat_conf": {}}
    save_model(str(tmp_path / "model.pt"), model, meta)
    obj = read_model_file(str(tmp_path / "model.pt"))
    assert obj["meta"] == meta
    for k, v in model.state_dict().items():
        assert torch.equal(obj["state_dict"][k], v)
    with pytest.raises(SerError, match="lacks"):
        save_model(str(tmp_path / "x.pt"), model, {"model_name": "tiny"})


# --- training loop --------------------------------------------------------------------------
def small_config(**over):
    cfg = canonical(C.DEFAULTS)
    cfg.update({"model": "tiny", "segment": {"length": 64, "shift": 32}, "batch_size": 8, "max_epochs": 4,
                "optim": {"lr": 0.01, "weight_decay": 0.0}, "plateau": {"patience": 1, "factor": 0.5},
                "early_stop_patience": 10, "mixup": {"enabled": True, "alpha": 0.4},
                "max_train_segments_per_epoch": 40})
    cfg.update(over)
    return cfg


def run_trainer(outdir, prep, cfg, seed=5, on_epoch_end=None):
    seed_everything(seed)
    model = TinyNet()
    meta = {"model_name": "tiny", "model_conf": {}, "num_classes": 3, "classes": CLASSES, "feat_dim": DIM,
            "segment": cfg["segment"], "feat_conf": {}, "train_config": cfg}
    trainer = Trainer(model, prep, cfg, str(outdir), "cpu", seed, meta, on_epoch_end=on_epoch_end)
    return trainer.run()


class Killed(Exception):
    pass


def kill_after(epoch_to_kill):
    """An on_epoch_end hook that stops training after that epoch's checkpoint, as a killed job."""
    def hook(epoch):
        if epoch == epoch_to_kill:
            raise Killed()
    return hook


def read_history(path):
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    return rows[0], [r[:-1] for r in rows[1:]]  # without the time column


def test_epoch_batches_cap_and_order():
    g = torch.Generator().manual_seed(0)
    b = epoch_batches(45, 8, g, cap=20)
    assert [len(x) for x in b] == [8, 8, 4]
    assert len(set(sum(b, []))) == 20
    b = epoch_batches(17, 8, g)  # a last batch of one is dropped
    assert [len(x) for x in b] == [8, 8]


def test_resume_is_bit_identical(tmp_path):
    corpus = make_corpus(str(tmp_path / "c"))
    prep = prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"]), 64, 32)
    cfg = small_config()
    full, cut = tmp_path / "full", tmp_path / "cut"
    run_trainer(full, prep, cfg)

    with pytest.raises(Killed):
        run_trainer(cut, prep, cfg, on_epoch_end=kill_after(2))
    assert not (cut / "done").exists() and load_checkpoint(str(cut / "checkpoints/last.pt"))["epoch"] == 2
    run_trainer(cut, prep, cfg)  # a fresh process would do the same: new model, resume
    assert (cut / "done").exists()
    assert "resumed from" in (cut / "train.log").read_text()

    a = load_checkpoint(str(full / "checkpoints/last.pt"))
    b = load_checkpoint(str(cut / "checkpoints/last.pt"))
    assert a["epoch"] == b["epoch"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    strip = [{k: v for k, v in r.items() if k != "time"} for r in a["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in b["history"]]
    ma, mb = read_model_file(str(full / "model.pt")), read_model_file(str(cut / "model.pt"))
    assert ma["meta"] == mb["meta"]
    for k in ma["state_dict"]:
        assert torch.equal(ma["state_dict"][k], mb["state_dict"][k])
    assert read_history(full / "history.tsv") == read_history(cut / "history.tsv")
    # the run did something: weights moved, and patience 1 halved the LR at least once
    header, rows = read_history(full / "history.tsv")
    assert header == ["epoch", "lr", "train_loss", "valid_loss", "valid_uar", "valid_wa", "time"]
    assert len(rows) == 4 and float(rows[0][1]) == 0.01
    # the LR column follows the plateau rule applied to the logged valid UARs
    p, lr = Plateau(1, 0.5, 10), 0.01
    for r in rows:
        assert math.isclose(float(r[1]), lr, rel_tol=1e-5)
        _, lr, _ = p.step(float(r[4]), int(r[0]), lr)
    # model.pt holds the epoch with the best (first maximal) valid UAR
    uars = [float(r[4]) for r in rows]
    assert ma["meta"]["best_epoch"] == 1 + int(np.argmax(uars))
    # a different seed gives a different model (the comparison above can fail)
    other = tmp_path / "other"
    run_trainer(other, prep, cfg, seed=6)
    c = load_checkpoint(str(other / "checkpoints/last.pt"))
    assert not all(torch.equal(a["model"][k], c["model"][k]) for k in a["model"])


def test_early_stop_and_done(tmp_path):
    corpus = make_corpus(str(tmp_path / "c"))
    prep = prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"]), 64, 32)
    # lr 0: the model never changes, so the valid UAR never improves after epoch 1
    cfg = small_config(optim={"lr": 0.0, "weight_decay": 0.0}, max_epochs=20, early_stop_patience=3,
                       plateau={"patience": 2, "factor": 0.5})
    with pytest.raises(SerError):  # lr must be > 0 in a config file; the trainer itself accepts it
        C.merge(C.DEFAULTS, {"optim": {"lr": 0.0}}, "x")
    summary = run_trainer(tmp_path / "out", prep, cfg)
    assert summary["epochs"] == 4 and summary["best_epoch"] == 1
    done = (tmp_path / "out" / "done").read_text()
    assert done.startswith("best_epoch 1 ")


def test_fold_without_validation_keeps_last_model(tmp_path):
    corpus = make_corpus(str(tmp_path / "c"))
    open(os.path.join(corpus["fold"], "valid.list"), "w").close()
    os.remove(os.path.join(corpus["fold"], "info.yaml"))
    prep = prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"]), 64, 32)
    assert prep.valid_segments == {}
    summary = run_trainer(tmp_path / "out", prep, small_config(max_epochs=2))
    assert summary["epochs"] == 2 and summary["best_epoch"] == 2 and math.isnan(summary["valid_uar"])
    last = load_checkpoint(str(tmp_path / "out/checkpoints/last.pt"))["model"]
    saved = read_model_file(str(tmp_path / "out/model.pt"))["state_dict"]
    assert all(torch.equal(last[k], saved[k]) for k in last)
