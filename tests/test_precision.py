"""Precision (fp32 / bf16 / fp16) of the classifier trainer, channels_last models, and the
regularisation options (SpecAugment masking, label smoothing) of the training config."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ser.errors import SerError
from ser.models import build_model
from ser.runtime.checkpoint import load_checkpoint, seed_everything
from ser.runtime.config import canonical
from ser.runtime.precision import autocast, check_precision, prepare_model
from ser.training import config as C
from ser.training.dataset import load_fold, prepare
from ser.training.mixup import smooth_labels, soft_cross_entropy
from ser.training.model_io import load_model, read_model_file, save_model
from ser.training.spec_augment import apply_masks, draw_masks, draw_spans
from ser.training.trainer import Trainer

from test_training import Killed, kill_after, small_config
from training_toy import CLASSES, DIM, TinyNet, make_corpus


class RecordingNet(TinyNet):
    """TinyNet that records the dtype of its hidden activations (a forward hook)."""

    def __init__(self):
        super().__init__()
        self.seen = set()
        self.layer.register_forward_hook(lambda module, inputs, out: self.seen.add(out.dtype))


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    corpus = make_corpus(str(tmp_path_factory.mktemp("c")))
    return prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"]), 64, 32)


def run_trainer(outdir, prep, cfg, seed=5, on_epoch_end=None, model=None):
    seed_everything(seed)
    model = model or RecordingNet()
    meta = {"model_name": "tiny", "model_conf": {}, "num_classes": 3, "classes": CLASSES, "feat_dim": DIM,
            "segment": cfg["segment"], "feat_conf": {}, "train_config": cfg}
    trainer = Trainer(model, prep, cfg, str(outdir), "cpu", seed, meta, on_epoch_end=on_epoch_end)
    return trainer, trainer.run()


def train_losses(history):
    return [r["train_loss"] for r in history]


# --- precision -------------------------------------------------------------------------------
@pytest.mark.parametrize("precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_autocast_dtype_inside_forward(tmp_path, prep, precision, dtype):
    trainer, _ = run_trainer(tmp_path, prep, small_config(precision=precision, max_epochs=1))
    assert trainer.model.seen == {dtype}
    # weights, checkpoint and model.pt stay fp32 whatever the precision
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    ckpt = load_checkpoint(str(tmp_path / "checkpoints/last.pt"))
    assert all(v.dtype == torch.float32 for v in ckpt["model"].values())
    saved = read_model_file(str(tmp_path / "model.pt"))
    assert all(v.dtype == torch.float32 for v in saved["state_dict"].values())


def test_fp16_refused_on_cpu(tmp_path, prep):
    with pytest.raises(SerError, match=r"^config 'precision': fp16 needs a CUDA device"):
        run_trainer(tmp_path, prep, small_config(precision="fp16"))
    assert not (tmp_path / "checkpoints").exists()
    with pytest.raises(SerError, match="'precision' must be one of fp32, bf16, fp16"):
        C.apply_overrides(canonical(C.DEFAULTS), ["precision=fp64"])
    check_precision("bf16", "cpu")  # accepted


def test_bf16_training_reaches_fp32_loss(tmp_path, prep):
    cfg = dict(small_config(max_epochs=6, mixup={"enabled": False, "alpha": 0.4}), max_train_segments_per_epoch=None)
    t32, _ = run_trainer(tmp_path / "fp32", prep, cfg)
    t16, _ = run_trainer(tmp_path / "bf16", prep, dict(cfg, precision="bf16"))
    l32, l16 = train_losses(t32.history), train_losses(t16.history)
    assert l32[-1] < 0.8 * l32[0] and l16[-1] < 0.8 * l16[0]   # both learned
    assert abs(l32[-1] - l16[-1]) < 0.05 * l32[-1] + 0.02
    assert l32 != l16   # bf16 really ran a different arithmetic


def test_resume_is_bit_identical_in_bf16(tmp_path, prep):
    cfg = small_config(precision="bf16")
    full, _ = run_trainer(tmp_path / "full", prep, cfg)

    with pytest.raises(Killed):
        run_trainer(tmp_path / "cut", prep, cfg, on_epoch_end=kill_after(2))
    cut, _ = run_trainer(tmp_path / "cut", prep, cfg)
    a = load_checkpoint(str(tmp_path / "full/checkpoints/last.pt"))
    b = load_checkpoint(str(tmp_path / "cut/checkpoints/last.pt"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert ([{k: v for k, v in r.items() if k != "time"} for r in full.history]
            == [{k: v for k, v in r.items() if k != "time"} for r in cut.history])


def test_channels_last_model_saves_plain_tensors_and_scores_the_same(tmp_path):
    torch.manual_seed(0)
    model = build_model("cnn", 3, 32, conv_channels=[4, 8])
    fast = prepare_model(model, "cpu")
    conv = [m for m in fast.modules() if isinstance(m, nn.Conv2d)][1]   # 4 input channels
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    meta = {"model_name": "cnn", "model_conf": {"conv_channels": [4, 8]}, "num_classes": 3, "classes": CLASSES,
            "feat_dim": 32, "segment": {"length": 16, "shift": 8}, "cmvn_mean": [0.0] * 32,
            "cmvn_std": [1.0] * 32, "feat_conf": {}}
    save_model(str(tmp_path / "model.pt"), fast, meta)
    saved = read_model_file(str(tmp_path / "model.pt"))
    assert all(v.is_contiguous() for v in saved["state_dict"].values())
    loaded, _ = load_model(str(tmp_path))
    x = torch.randn(5, 16, 32)
    fast.eval()
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), fast(x).numpy(), rtol=1e-5, atol=1e-5)


def test_autocast_helper_dtypes():
    lin = nn.Linear(4, 4)
    with autocast("bf16", "cpu"):
        assert lin(torch.randn(2, 4)).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert lin(torch.randn(2, 4)).dtype == torch.float32


# --- config hash ----------------------------------------------------------------------------
@pytest.mark.parametrize("override", ["precision=bf16", "label_smoothing=0.1", "spec_augment.enabled=true",
                                      "spec_augment.time_width=10", "spec_augment.freq_masks=1"])
def test_config_hash_changes_with_each_option(override):
    base = canonical(C.DEFAULTS)
    assert C.config_hash(C.apply_overrides(base, [override])) != C.config_hash(base)


@pytest.mark.parametrize("override,message", [("label_smoothing=1.0", "'label_smoothing' must be >= 0.0 and < 1.0"),
                                              ("label_smoothing=-0.1", "'label_smoothing' must be >= 0.0"),
                                              ("spec_augment.time_masks=-1", "'spec_augment.time_masks' must be >= 0")])
def test_bad_regularisation_values_refused(override, message):
    with pytest.raises(SerError, match=message):
        C.apply_overrides(canonical(C.DEFAULTS), [override])


# --- SpecAugment ----------------------------------------------------------------------------
def test_masks_zero_exactly_the_stated_frames_and_bands():
    x = torch.arange(2 * 6 * 5, dtype=torch.float32).reshape(2, 6, 5) + 1.0
    time = torch.zeros(2, 6, dtype=torch.bool)
    freq = torch.zeros(2, 5, dtype=torch.bool)
    time[0, 1:3] = True        # segment 0: frames 1-2
    freq[1, 4] = True          # segment 1: band 4
    y = apply_masks(x, time, freq)
    expected = x.clone()
    expected[0, 1:3, :] = 0
    expected[1, :, 4] = 0
    assert torch.equal(y, expected)


def test_drawn_spans_are_contiguous_and_bounded():
    g = torch.Generator().manual_seed(3)
    mask = draw_spans(1, 50, 7, 200, g)
    widths = mask.sum(dim=1)
    assert widths.max() <= 7 and widths.min() >= 0 and len(set(widths.tolist())) > 3
    for row in mask:
        idx = torch.nonzero(row).flatten()
        if len(idx):
            assert idx[-1] - idx[0] + 1 == len(idx)   # one contiguous span
    time, freq = draw_masks(4, 30, 12, {"time_masks": 2, "time_width": 5, "freq_masks": 0, "freq_width": 3}, g)
    assert time.shape == (4, 30) and freq.shape == (4, 12) and not freq.any()
    assert (time.sum(dim=1) <= 10).all()


def test_trainer_masks_training_segments(tmp_path, prep):
    """With SpecAugment on, the network sees zeroed frames/bands in training, never in validation."""
    seen = {"train": [], "eval": []}

    class Spy(RecordingNet):
        def forward(self, x):
            zero_frames = (x == 0).all(dim=2).sum().item()
            zero_bands = (x == 0).all(dim=1).sum().item()
            seen["train" if self.training else "eval"].append((zero_frames, zero_bands))
            return super().forward(x)

    cfg = small_config(max_epochs=1, mixup={"enabled": False, "alpha": 0.4},
                       spec_augment={"enabled": True, "time_masks": 2, "time_width": 10,
                                     "freq_masks": 2, "freq_width": 4})
    run_trainer(tmp_path, prep, cfg, model=Spy())
    assert sum(b for _, b in seen["train"]) > 0
    assert all(b == 0 for _, b in seen["eval"])


# --- label smoothing ------------------------------------------------------------------------
def test_label_smoothing_closed_form():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    eps = 0.2
    logp = torch.log_softmax(logits, dim=1)
    closed = ((1 - eps) * -logp[torch.arange(6), y] + eps * -logp.mean(dim=1)).mean()
    assert math.isclose(F.cross_entropy(logits, y, label_smoothing=eps).item(), closed.item(), rel_tol=1e-6)
    soft = soft_cross_entropy(logits, smooth_labels(F.one_hot(y, 4).float(), eps))
    assert math.isclose(soft.item(), closed.item(), rel_tol=1e-6)
    assert smooth_labels(F.one_hot(y, 4).float(), 0.0).equal(F.one_hot(y, 4).float())


def test_tensorboard_switch_leaves_the_experiment_hash_alone():
    base = canonical(C.DEFAULTS)
    on = C.apply_overrides(base, ["tensorboard=true"])
    assert on["tensorboard"] is True and C.config_hash(on) == C.config_hash(base)
