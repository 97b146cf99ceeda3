"""Class-balanced cross-entropy (config class_weights): the weights of known label counts, the
weighted loss against torch's own weighted cross-entropy, the loss the trainer optimises, the config
(absent while off) and a training run that logs its weights."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ser.errors import SerError
from ser.training import config as C
from ser.training.class_weights import balanced_weights, class_weights
from ser.training.dataset import PreparedData, SegmentSet, load_fold, prepare
from ser.training.mixup import soft_cross_entropy
from ser.training.trainer import Trainer

from test_train_program import toy_config_resolver, train_toy


def test_balanced_weights_of_known_counts():
    labels = [0] * 4 + [1] + [3] * 3                    # class 2 has no segment
    w = balanced_weights(labels, 4)
    np.testing.assert_allclose(w, [8 / 12, 8 / 3, 0.0, 8 / 9])
    per_segment = w[labels]
    assert math.isclose(per_segment.mean(), 1.0)        # the loss keeps its scale
    totals = [w[c] * labels.count(c) for c in (0, 1, 3)]
    np.testing.assert_allclose(totals, [8 / 3] * 3)     # every present class weighs the same
    np.testing.assert_allclose(balanced_weights([2, 0, 1, 2, 0, 1], 3), [1.0, 1.0, 1.0])
    assert class_weights("none", labels, 4) is None
    assert class_weights("balanced", labels, 4).dtype == torch.float32
    with pytest.raises(SerError, match="class index 4 outside 0..3"):
        balanced_weights([0, 4], 4)
    with pytest.raises(SerError, match="class_weights must be one of none, balanced"):
        class_weights("inverse", labels, 4)


def test_weighted_soft_cross_entropy_is_torchs_weighted_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    y = torch.tensor([0, 1, 3, 3, 0, 2])
    w = torch.tensor([0.5, 2.0, 1.5, 0.25])
    onehot = F.one_hot(y, 4).float()
    reference = F.cross_entropy(logits, y, weight=w, reduction="none").mean()   # w[y_i] * nll_i
    assert torch.allclose(soft_cross_entropy(logits, onehot, w), reference)
    # mixed targets: the weighted losses of both labels in the mixing proportion
    perm, lam = torch.tensor([3, 2, 5, 0, 1, 4]), 0.3
    mixed = lam * onehot + (1 - lam) * onehot[perm]
    expected = (lam * F.cross_entropy(logits, y, weight=w, reduction="none")
                + (1 - lam) * F.cross_entropy(logits, y[perm], weight=w, reduction="none")).mean()
    assert torch.allclose(soft_cross_entropy(logits, mixed, w), expected)
    assert torch.allclose(soft_cross_entropy(logits, onehot), F.cross_entropy(logits, y))


class MeanLinear(nn.Module):
    """Time mean -> linear: no batch norm or dropout, so a batch's loss depends on its segments only."""

    def __init__(self, dim, classes):
        super().__init__()
        self.linear = nn.Linear(dim, classes)

    def forward(self, x):
        return self.linear(x.mean(dim=1))


def epoch_loss(tmp_path, weights_mode):
    rng = np.random.default_rng(0)
    labels = [0] * 10 + [1] * 2 + [2] * 4
    mats = [rng.normal(loc=c, size=(16, 5)).astype(np.float32) for c in labels]
    data = PreparedData(SegmentSet(mats, labels, 16, 16), {}, {}, np.zeros(5), np.ones(5))
    config = C.merge(C.DEFAULTS, {"batch_size": 4, "optim": {"lr": 1e-12}, "class_weights": weights_mode}, "test")
    torch.manual_seed(0)
    model = MeanLinear(5, 3)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.stack(mats)))
    trainer = Trainer(model, data, config, str(tmp_path / weights_mode), "cpu", 1, {"num_classes": 3})
    nll = F.cross_entropy(logits, torch.tensor(labels), reduction="none").numpy()
    return trainer.train_epoch(), nll, np.array(labels)


def test_the_trainer_optimises_the_weighted_loss(tmp_path):
    """With a learning rate too small to move the weights, an epoch's training loss is the loss of
    the initial model over every segment: weighted by class under `balanced`, plain otherwise."""
    weighted, nll, labels = epoch_loss(tmp_path, "balanced")
    plain, _, _ = epoch_loss(tmp_path, "none")
    w = np.array([16 / 30, 16 / 6, 16 / 12])
    assert math.isclose(weighted, float((w[labels] * nll).mean()), rel_tol=1e-5)
    assert math.isclose(plain, float(nll.mean()), rel_tol=1e-5)
    assert abs(weighted - plain) > 1e-3


def test_config_leaves_the_option_out_while_it_is_off(tmp_path):
    resolved = toy_config_resolver(tmp_path)
    default = resolved()
    assert "class_weights" not in default
    assert C.config_hash(resolved("class_weights=none")) == C.config_hash(default)
    balanced = resolved("class_weights=balanced")
    assert balanced["class_weights"] == "balanced"
    assert C.config_hash(balanced) != C.config_hash(default)
    with pytest.raises(SerError, match="class_weights"):
        resolved("class_weights=inverse")


def test_a_training_run_logs_its_class_weights(tmp_path):
    corpus, outdir, proc = train_toy(tmp_path, ["--max-epochs", "1", "--set", "class_weights=balanced"])
    assert proc.returncode == 0, proc.stderr
    assert "class_weights: balanced" in (outdir / "config.yaml").read_text()
    line = next(l for l in (outdir / "train.log").read_text().splitlines() if "class weights (balanced):" in l)
    logged = [float(v) for v in line.split("(balanced):")[1].split()[1::2]]
    # the weights of the fold's training segments (length 64, shift 32 in CONFIG)
    prepared = prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"]), 64, 32)
    expected = balanced_weights(prepared.train_set.segment_labels(), len(logged))
    np.testing.assert_allclose(logged, expected, atol=5e-4)
    assert len(set(np.round(expected, 3))) > 1      # the toy fold's segments are unbalanced
