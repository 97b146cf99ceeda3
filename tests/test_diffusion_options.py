"""Options of issue 14 (prediction target, bounded variance, frame-index channels, crops, band
normalisation, diagnostics) and the precision setting of issue 12, for the diffusion model."""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from ser.bin import generate, train_diffusion
from ser.diffusion import EMA, GaussianDiffusion, build_diffusion, cosine_betas
from ser.diffusion.denoiser import MelDenoiser, frame_position_channels
from ser.diffusion.normalize import BandNorm
from ser.diffusion.trainer import DiffusionTrainer
from ser.errors import SerError

import diffusion_helpers
from diffusion_helpers import gen_args, run_killed_and_resumed, train_args

# The shared module-scoped fixtures, bound here so that pytest finds them.
corpus = diffusion_helpers.corpus
pytestmark = pytest.mark.usefixtures("one_thread")


def _process(prediction="eps", bound="none", T=50):
    return GaussianDiffusion(cosine_betas(T), prediction=prediction, variance_bound=bound)


# --- prediction targets ---------------------------------------------------------------------------
@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_targets_match_closed_form_and_invert(prediction):
    d = _process(prediction, T=100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(6, 4, 9, generator=g) * 2 - 1
    noise = torch.randn(6, 4, 9, generator=g)
    t = torch.tensor([0, 10, 40, 70, 98, 99])
    a = torch.tensor(np.sqrt(d.alphas_cumprod), dtype=torch.float32)[t][:, None, None]
    s = torch.tensor(np.sqrt(1 - d.alphas_cumprod), dtype=torch.float32)[t][:, None, None]
    expected = {"eps": noise, "v": a * noise - s * x0, "x0": x0}[prediction]
    target = d.training_target(x0, t, noise)
    assert torch.allclose(target, expected, atol=1e-6)
    # the exact target implies the exact x0 and ε (x0 loosely at t near T for ε: the 1/√ᾱ blow-up)
    xt = d.q_sample(x0, t, noise)
    x0_hat, eps_hat = d.x0_and_eps(target, xt, t)
    tol = 1e-4 if prediction != "eps" else None
    if tol:
        assert torch.allclose(x0_hat, x0, atol=tol)
    else:
        assert torch.allclose(x0_hat[:4], x0[:4], atol=1e-3)
    assert torch.allclose(eps_hat[:5], noise[:5], atol=2e-3)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_training_loss_is_zero_for_the_exact_target(prediction):
    d = _process(prediction)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(3, 4, 8, generator=g) * 2 - 1
    noise = torch.randn(3, 4, 8, generator=g)
    t = torch.tensor([3, 20, 45])

    def oracle(xt, t_model, cond):
        return torch.cat([d.training_target(x0, t_model, noise), torch.zeros_like(xt)], dim=1)

    losses = d.training_losses(oracle, x0, t, noise=noise)
    assert torch.allclose(losses["mse"], torch.zeros(3), atol=1e-10)


def test_unknown_prediction_and_bound_are_errors():
    with pytest.raises(SerError, match="prediction"):
        build_diffusion({"steps": 10, "prediction": "score"})
    with pytest.raises(SerError, match="variance_bound"):
        build_diffusion({"steps": 10, "variance_bound": "tanh"})


# --- bounded variance -----------------------------------------------------------------------------
@pytest.mark.parametrize("bound", ["clamp", "sigmoid"])
def test_variance_bounds_keep_log_variance_between_beta_tilde_and_beta(bound):
    d = _process("v", bound)
    t = torch.tensor([1, 25, 49])
    xt = torch.zeros(3, 2, 5)
    lo = torch.tensor(d.posterior_log_variance_clipped[t.numpy()], dtype=torch.float32)[:, None, None]
    hi = torch.tensor(d.log_betas[t.numpy()], dtype=torch.float32)[:, None, None]
    for v, end in ((14.0, hi), (-14.0, lo)):
        out = torch.cat([torch.zeros(3, 2, 5), torch.full((3, 2, 5), v)], dim=1)
        logvar = d.p_mean_variance_from_output(out, xt, t)["log_variance"]
        assert torch.all(logvar >= lo - 1e-5) and torch.all(logvar <= hi + 1e-5)
        assert torch.allclose(logvar, end.expand_as(logvar), atol=1e-3 if bound == "sigmoid" else 1e-6)
    # unbounded (the paper's reference) extrapolates past log β
    out = torch.cat([torch.zeros(3, 2, 5), torch.full((3, 2, 5), 14.0)], dim=1)
    assert torch.all(_process("v", "none").p_mean_variance_from_output(out, xt, t)["log_variance"] > hi)


# --- frame-index channels and crops ---------------------------------------------------------------
def test_position_channels_of_a_crop_are_those_of_the_segment():
    full = frame_position_channels(8, 64, torch.tensor([0]))
    crop = frame_position_channels(8, 16, torch.tensor([5, 40]))
    assert crop.shape == (2, 8, 16)
    assert torch.allclose(crop[0], full[0, :, 5:21], atol=1e-5)
    assert torch.allclose(crop[1], full[0, :, 40:56], atol=1e-5)


def test_position_channels_break_translation_equivariance():
    torch.manual_seed(0)
    conf = {"n_mels": 8, "channels": 16, "num_layers": 1, "num_res_blocks": 1, "heads": 2, "time_dim": 8,
            "cond_dim": 0, "norm_groups": 4}
    x, t = torch.full((1, 8, 32), 0.3), torch.tensor([5])
    for pos, constant in ((0, True), (8, False)):
        net = MelDenoiser({**conf, "pos_channels": pos})
        nn.init.normal_(net.conv_out.weight, std=0.1)        # a non-zero output
        y = net(x, t)[..., 8:-8]                             # inner frames (beyond the convolutions' zero padding)
        assert torch.allclose(y, y[..., :1].expand_as(y), atol=1e-5) == constant
    with pytest.raises(SerError, match="pos_channels"):
        MelDenoiser({**conf, "pos_channels": 3})


class _Cond(nn.Module):
    """A stand-in conditioner: a learnt vector per string."""

    def __init__(self, dim):
        super().__init__()
        self.table = nn.Embedding(4, dim)

    def forward(self, texts):
        return self.table(torch.tensor([int(s) for s in texts]))


def _tiny_config(**over):
    cfg = {"process": {"steps": 20, "schedule": "cosine", "vlb_weight": 0.001, "prediction": "v",
                       "variance_bound": "clamp"},
           "segment": {"length": 32, "shift": 16, "pad_value": -1.0, "crop": 12},
           "normalize": {"type": "none", "scale": 3.0},
           "batch_size": 4, "optim": {"type": "adamw", "lr": 1e-3, "weight_decay": 0.0, "beta1": 0.9,
                                      "beta2": 0.999, "warmup_steps": 0, "grad_clip": 1.0},
           "ema": {"decay": 0.9, "warmup": True}, "max_steps": 2, "checkpoint_every": 10, "log_every": 1,
           "precision": "fp32"}
    for k, v in over.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) else v
    return cfg


def _tiny_nets(pos=4):
    torch.manual_seed(0)
    den = MelDenoiser({"n_mels": 6, "channels": 8, "num_layers": 1, "num_res_blocks": 1, "heads": 2,
                       "time_dim": 8, "cond_dim": 4, "norm_groups": 4, "pos_channels": pos})
    return nn.ModuleDict({"denoiser": den, "conditioner": _Cond(4)})


def _toy_data(n=8, length=32):
    rng = np.random.default_rng(0)
    seg = np.clip(rng.normal(-0.3, 0.3, (n, 6, length)), -1, 1).astype(np.float32)
    return type("D", (), {"segments": seg, "conditions": [str(i % 2) for i in range(n)]})()


def test_crops_have_the_stated_length_and_offsets(tmp_path):
    nets = _tiny_nets()
    seen = []
    real_forward = nets["denoiser"].forward

    def spy(x, t, cond=None, frame_offset=None):
        seen.append((x.shape[-1], frame_offset.clone()))
        return real_forward(x, t, cond, frame_offset)

    nets["denoiser"].forward = spy
    trainer = DiffusionTrainer(nets, _toy_data(), _tiny_config(), str(tmp_path), "cpu", 0, {})
    for _ in range(3):
        trainer.train_step()
    assert [s[0] for s in seen] == [12, 12, 12]
    offsets = torch.cat([s[1] for s in seen])
    assert offsets.min() >= 0 and offsets.max() <= 32 - 12 and len(set(offsets.tolist())) > 1
    # the cropped x0 is the segment's frames at that offset
    x0 = trainer.segments[:2]
    off = torch.tensor([0, 20])
    crop = trainer.crop_segments(x0, off)
    assert torch.equal(crop[0], x0[0, :, :12]) and torch.equal(crop[1], x0[1, :, 20:32])


# --- band normalisation ---------------------------------------------------------------------------
def test_band_norm_uses_the_training_statistics_and_inverts(tmp_path):
    data = _toy_data()
    norm = BandNorm.from_segments(data.segments, 3.0)
    assert np.allclose(norm.mean, data.segments.astype(np.float64).mean(axis=(0, 2)))
    x = torch.from_numpy(data.segments)
    y = norm.forward(x)
    assert torch.allclose(y.mean(dim=(0, 2)), torch.zeros(6), atol=1e-5)
    assert torch.allclose(y.std(dim=(0, 2), unbiased=False), torch.full((6,), 1 / 3.0), atol=1e-4)
    assert torch.allclose(norm.inverse(y), x, atol=1e-5)
    low, high = norm.bounds()
    assert torch.allclose(norm.inverse(low[None].expand(1, 6, 3)), torch.full((1, 6, 3), -1.0), atol=1e-5)
    assert torch.allclose(norm.inverse(high[None].expand(1, 6, 3)), torch.full((1, 6, 3), 1.0), atol=1e-5)
    meta = {}
    trainer = DiffusionTrainer(_tiny_nets(), data, _tiny_config(normalize={"type": "band"}), str(tmp_path),
                               "cpu", 0, meta)
    assert np.allclose(trainer.meta["normalize"]["mean"], norm.mean)
    assert torch.allclose(trainer.segments, y, atol=1e-6)
    assert trainer.diffusion.clip_bounds is not None


# --- precision ------------------------------------------------------------------------------------
def test_bf16_autocast_reaches_the_denoiser_on_cpu_and_fp16_is_refused(tmp_path):
    nets = _tiny_nets()
    seen = []
    real_forward = nets["denoiser"].forward

    def spy(x, t, cond=None, frame_offset=None):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return real_forward(x, t, cond, frame_offset)

    nets["denoiser"].forward = spy
    trainer = DiffusionTrainer(nets, _toy_data(), _tiny_config(precision="bf16"), str(tmp_path), "cpu", 0, {})
    loss, mse, vb = trainer.train_step()
    assert seen == [(True, torch.bfloat16)] and all(map(math.isfinite, (loss, mse, vb)))
    assert all(p.dtype == torch.float32 for p in trainer.nets.parameters())
    with pytest.raises(SerError, match="fp16 needs a CUDA device"):
        DiffusionTrainer(_tiny_nets(), _toy_data(), _tiny_config(precision="fp16"), str(tmp_path), "cpu", 0, {})


def test_fp16_on_cpu_is_a_one_line_error(corpus, tmp_path, capsys):
    with pytest.raises(SerError, match="fp16 needs a CUDA device") as e:
        train_diffusion.main(train_args(corpus, tmp_path / "x", "--set", "precision=fp16"))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x").exists()


OPTIONS = ["--set", "precision=bf16", "--set", "process.prediction=v", "--set", "process.variance_bound=clamp",
           "--set", "denoiser.pos_channels=4", "--set", "segment.crop=128", "--set", "normalize.type=band",
           "--set", "diagnostics.segments=4", "--set", "diagnostics.samples=3", "--set",
           "diagnostics.sampling_steps=4"]


def test_resume_bf16_with_every_option_is_bit_identical(corpus, tmp_path):
    base = ["--set", "max_steps=4", "--set", "checkpoint_every=2", "--num-threads", "1", *OPTIONS]
    full, resumed, at_2 = run_killed_and_resumed(corpus, tmp_path, *base)
    a = torch.load(full / "checkpoints/last.pt", weights_only=False)
    b = torch.load(resumed / "checkpoints/last.pt", weights_only=False)
    assert all(torch.equal(a["nets"][n], b["nets"][n]) for n in a["nets"])
    assert all(torch.equal(a["ema"]["shadow"][n], b["ema"]["shadow"][n]) for n in a["ema"]["shadow"])
    assert any(not torch.equal(a["nets"][n], at_2["nets"][n]) for n in a["nets"])
    assert all(v.dtype == torch.float32 for v in a["nets"].values() if v.is_floating_point())
    # the options reach the model's meta, the diagnostics are written
    meta = torch.load(full / "model.pt", weights_only=False)["meta"]
    assert meta["process"]["prediction"] == "v" and meta["denoiser"]["pos_channels"] == 4
    assert len(meta["normalize"]["mean"]) == 80
    summary = json.loads((full / "diagnostics" / "summary.json").read_text())
    assert {"x0_mad_tmax", "eps_mse_tmax", "pad_frac_syn", "band_mean_mae", "mad", "harmonicity_syn",
            "harmonicity_real", "harmonicity_noise"} <= set(summary)
    assert (full / "diagnostics" / "mel_grid.png").stat().st_size > 0
    rows = (full / "diagnostics" / "by_t.tsv").read_text().splitlines()
    assert rows[0] == "t\teps_mse\tx0_mad\tx0_harmonicity" and len(rows) == 8
    assert all(0 < float(r.split("\t")[3]) < 1 for r in rows[1:])
    # generation maps band-normalised samples back into [-1, 1]
    out = tmp_path / "syn"
    assert generate.main(gen_args(full, out, 1, 3)) == 0
    import kaldiio
    mats = [m for _, m in kaldiio.load_scp_sequential(str(out / "feats.scp"))]
    assert mats and all(m.min() >= -1 and m.max() <= 1 and m.shape[1] == 80 for m in mats)


def test_every_new_option_changes_the_config_hash(corpus, capsys):
    def hash_of(*extra):
        assert train_diffusion.main(train_args(corpus, "unused", "--print-config-hash", *extra)) == 0
        return capsys.readouterr().out.strip()

    base = hash_of()
    changed = [hash_of("--set", kv) for kv in (
        "process.prediction=v", "process.variance_bound=clamp", "denoiser.pos_channels=8", "segment.crop=64",
        "normalize.type=band", "normalize.scale=2.0", "ema.decay=0.99", "optim.warmup_steps=7", "precision=bf16",
        "diagnostics.samples=2", "guidance.snapshot_step=2")]
    assert len(set(changed + [base])) == len(changed) + 1


def test_crop_longer_than_the_segment_is_an_error(corpus):
    with pytest.raises(SerError, match="segment.crop"):
        train_diffusion.main(train_args(corpus, "unused", "--set", "segment.crop=300", "--print-config"))


# --- the toy distribution -------------------------------------------------------------------------
def harmonic_stacks(n, f0, rng, bands=16, frames=32, tail=8):
    """Segments of a 'voiced' tone: ridges at every f0-th band (varying loudness over time),
    a floor elsewhere, and a padded tail of `tail` frames at -1."""
    x = np.full((n, bands, frames), -0.6, dtype=np.float32)
    for k in range(f0 - 1, bands, f0):
        x[:, k, :] = 0.5 + 0.1 * rng.standard_normal((n, 1)).astype(np.float32)
    x[:, :, frames - tail:] = -1.0
    return x


def test_toy_harmonic_stacks_keep_their_class_and_padded_tail():
    """A tiny conditioned model, trained 400 steps with v-prediction, frame-index
    channels and EMA, samples segments nearer their own class mean than the other's, with the
    padded tail at the pad value."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = {0: harmonic_stacks(32, 2, rng), 1: harmonic_stacks(32, 3, rng)}
    x_all = torch.from_numpy(np.concatenate([data[0], data[1]]))
    y_all = torch.tensor([0] * 32 + [1] * 32)
    d = build_diffusion({"steps": 200, "prediction": "v", "variance_bound": "clamp"})
    den = MelDenoiser({"n_mels": 16, "channels": 32, "num_layers": 2, "num_res_blocks": 1, "heads": 2,
                       "time_dim": 32, "cond_dim": 8, "norm_groups": 8, "pos_channels": 16})
    emb = nn.Embedding(2, 8)
    nets = nn.ModuleDict({"denoiser": den, "conditioner": emb})
    opt = torch.optim.AdamW(nets.parameters(), lr=3e-3)
    ema = EMA(nets, decay=0.98, warmup=True)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        idx = torch.randint(0, 64, (16,), generator=g)
        t, _ = d.sample_timesteps(16, "cpu", generator=g)
        loss = d.training_losses(den, x_all[idx], t, emb(y_all[idx]), generator=g)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update(nets)
    ema.copy_to(nets)
    sampler = build_diffusion({"steps": 200, "prediction": "v", "variance_bound": "clamp"}, sampling_steps=25)
    labels = torch.tensor([0, 1] * 4)
    with torch.no_grad():
        x = sampler.p_sample_loop(den, (8, 16, 32), emb(labels), generator=torch.Generator().manual_seed(1))
    means = {c: torch.from_numpy(data[c]).mean(0) for c in (0, 1)}
    for s, c in zip(x, labels.tolist()):
        own = (s - means[c]).abs().mean()
        other = (s - means[1 - c]).abs().mean()
        assert own < other, (c, float(own), float(other))
        # the padded tail is silence: near -1, below the content's floor (-0.6)
        assert s[:, -8:].mean() < -0.8 and (s[:, -8:] + 1).abs().mean() < 0.2, (c, float(s[:, -8:].mean()))
