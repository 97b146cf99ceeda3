"""The moving average of the weights (config weight_ema): the update rule, what the trainer
validates and saves, resumption, and the config checks."""
import numpy as np
import pytest
import torch
from torch import nn

from ser.errors import SerError
from ser.runtime.checkpoint import load_checkpoint, seed_everything
from ser.runtime.config import canonical
from ser.training import config as C
from ser.training.dataset import load_fold, prepare
from ser.training.inference import posteriors_of_segment_sets
from ser.training.model_io import read_model_file
from ser.training.trainer import Trainer
from ser.training.weight_ema import WeightEma, effective_decay

from test_training import Killed, kill_after, small_config
from training_toy import CLASSES, DIM, make_corpus


class BnNet(nn.Module):
    """Frame-wise MLP with batch norm (running statistics and a batch counter to average)."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(DIM, 8)
        self.norm = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, len(CLASSES))

    def forward(self, x):
        h = self.layer(x)                                   # (B, T, 8)
        h = self.norm(h.transpose(1, 2)).transpose(1, 2)
        return self.out(torch.relu(h).mean(dim=1))


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    corpus = make_corpus(str(tmp_path_factory.mktemp("c")))
    return prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"]), 64, 32)


def ema_config(**over):
    return small_config(weight_ema={"enabled": True, "decay": 0.9}, **over)


def run_trainer(outdir, prep, cfg, on_epoch_end=None, seed=5):
    seed_everything(seed)
    meta = {"model_name": "bn", "model_conf": {}, "num_classes": 3, "classes": CLASSES, "feat_dim": DIM,
            "segment": cfg["segment"], "feat_conf": {}, "train_config": cfg}
    trainer = Trainer(BnNet(), prep, cfg, str(outdir), "cpu", seed, meta, on_epoch_end=on_epoch_end)
    trainer.run()
    return trainer


def test_update_follows_the_closed_form():
    torch.manual_seed(0)
    model = BnNet()
    ema = WeightEma(model, decay=0.9)
    expected = {k: v.double() for k, v in model.state_dict().items() if v.is_floating_point()}
    for n in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model.norm.running_mean.add_(1.0)
            model.norm.num_batches_tracked.add_(7)
        ema.update(model)
        d = min(0.9, (1 + n) / (10 + n))
        assert effective_decay(0.9, n) == pytest.approx(d)
        for k in expected:
            expected[k] = d * expected[k] + (1 - d) * model.state_dict()[k].double()
    got = ema.module.state_dict()
    for k, v in expected.items():
        assert torch.allclose(got[k].double(), v, atol=1e-6), k
    assert got["norm.num_batches_tracked"].item() == 21     # integers are copied, not averaged
    assert ema.updates == 3
    # the copy does not train and the trained model is untouched by it
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in model.parameters())
    # late in a run the configured decay holds
    assert effective_decay(0.9, 1000) == 0.9


def test_trainer_validates_and_saves_the_average(tmp_path, prep):
    cfg = ema_config(max_epochs=4, mixup={"enabled": False, "alpha": 0.4})
    trainer = run_trainer(tmp_path, prep, cfg)
    # 40 segments a epoch in batches of 8: 5 optimizer steps, each followed by an update
    assert trainer.ema.updates == 4 * 5
    utts = list(prep.valid_segments)
    true = np.array([prep.valid_labels[u] for u in utts])

    def valid_loss(model):
        post = posteriors_of_segment_sets(model, prep.valid_segments, "cpu", 64)
        probs = np.stack([post[u] for u in utts])
        return float(-np.log(np.maximum(probs[np.arange(len(utts)), true], 1e-12)).mean())
    last = trainer.history[-1]["valid_loss"]
    assert valid_loss(trainer.ema.module) == pytest.approx(last, abs=1e-6)
    assert abs(valid_loss(trainer.model) - last) > 1e-4      # not the trained weights
    # model.pt holds the average of its epoch: the best epoch's history row scores it
    saved = read_model_file(str(tmp_path / "model.pt"))
    best = saved["meta"]["best_epoch"]
    reloaded = BnNet()
    reloaded.load_state_dict(saved["state_dict"])
    assert valid_loss(reloaded) == pytest.approx(trainer.history[best - 1]["valid_loss"], abs=1e-6)
    if best == 4:
        for k, v in trainer.ema.module.state_dict().items():
            assert torch.equal(saved["state_dict"][k], v), k


def test_resume_is_bit_identical_with_the_average(tmp_path, prep):
    cfg = ema_config()
    full = run_trainer(tmp_path / "full", prep, cfg)

    with pytest.raises(Killed):
        run_trainer(tmp_path / "cut", prep, cfg, on_epoch_end=kill_after(2))
    cut = run_trainer(tmp_path / "cut", prep, cfg)
    a = load_checkpoint(str(tmp_path / "full/checkpoints/last.pt"))
    b = load_checkpoint(str(tmp_path / "cut/checkpoints/last.pt"))
    assert a["ema"]["updates"] == b["ema"]["updates"] == full.ema.updates
    for k in a["ema"]["module"]:
        assert torch.equal(a["ema"]["module"][k], b["ema"]["module"][k]), k
    assert ([{k: v for k, v in r.items() if k != "time"} for r in full.history]
            == [{k: v for k, v in r.items() if k != "time"} for r in cut.history])


def test_config_hash_and_bounds():
    base = canonical(C.DEFAULTS)
    assert base["weight_ema"] == {"enabled": False, "decay": 0.99}   # off unless a config asks
    for override in ("weight_ema.enabled=true", "weight_ema.decay=0.999"):
        assert C.config_hash(C.apply_overrides(base, [override])) != C.config_hash(base)
    for bad in ("weight_ema.decay=1.0", "weight_ema.decay=-0.5"):
        with pytest.raises(SerError, match="'weight_ema.decay' must be >= 0.0"):
            C.apply_overrides(base, [bad])
