"""Learned variance, the hybrid loss and its gradients, the MelDenoiser, EMA, and a tiny model
trained on a two-mode toy distribution that strided sampling must reproduce (and steer)."""
import io
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ser.diffusion import EMA, GaussianDiffusion, build_diffusion, cosine_betas
from ser.diffusion.denoiser import PAPER_PRESET, MelDenoiser
from ser.errors import SerError

TINY = {"n_mels": 8, "channels": 32, "num_layers": 2, "num_res_blocks": 1, "heads": 2, "time_dim": 32,
        "cond_dim": 2, "norm_groups": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


def const_model(out):
    """A 'model' that returns a fixed output tensor whatever its input."""
    return lambda x, t, cond: out


@pytest.mark.parametrize("v,target", [(1.0, "betas"), (-1.0, "posterior_variance")])
def test_learned_variance_endpoints(v, target):
    d = GaussianDiffusion(cosine_betas(100))
    t = torch.tensor([1, 2, 17, 50, 99])
    x = torch.randn(5, 3, 4)
    out = torch.cat([torch.randn(5, 3, 4), torch.full((5, 3, 4), v)], dim=1)
    res = d.p_mean_variance(const_model(out), x, t)
    want = getattr(d, target)[t.numpy()]
    np.testing.assert_allclose(res["variance"][:, 0, 0].double().numpy(), want, rtol=1e-5)
    assert torch.all(res["variance"] == res["variance"][:, :1, :1])
    # v = 0: geometric mean of the two
    out[:, 3:] = 0.0
    mid = d.p_mean_variance(const_model(out), x, t)["variance"][:, 0, 0].double().numpy()
    np.testing.assert_allclose(mid, np.sqrt(d.betas[t.numpy()] * d.posterior_variance[t.numpy()]), rtol=1e-5)


def test_p_mean_is_posterior_of_clipped_x0():
    d = GaussianDiffusion(cosine_betas(100))
    t = torch.tensor([0, 40, 90])
    x = torch.randn(3, 2, 5) * 3
    eps = torch.randn(3, 2, 5)
    res = d.p_mean_variance(const_model(torch.cat([eps, torch.zeros_like(eps)], 1)), x, t)
    tn = t.numpy()[:, None, None]
    x0 = (x.double().numpy() - d.sqrt_one_minus_alphas_cumprod[tn] * eps.double().numpy()) / d.sqrt_alphas_cumprod[tn]
    x0 = np.clip(x0, -1, 1)
    np.testing.assert_allclose(res["pred_x0"].double().numpy(), x0, rtol=1e-4, atol=1e-5)
    mean = d.posterior_mean_coef1[tn] * x0 + d.posterior_mean_coef2[tn] * x.double().numpy()
    np.testing.assert_allclose(res["mean"].double().numpy(), mean, rtol=1e-4, atol=1e-5)


def test_vlb_gradient_reaches_only_the_variance_output():
    d = GaussianDiffusion(cosine_betas(100))
    x0 = torch.rand(4, 3, 6) * 2 - 1
    t = torch.tensor([0, 1, 50, 99])
    out = (torch.randn(4, 6, 6) * 0.5).requires_grad_(True)
    losses = d.training_losses(const_model(out), x0, t)
    assert losses["vb"].shape == (4,) and torch.all(losses["vb"] > 0)
    g_vb, = torch.autograd.grad(losses["vb"].sum(), out, retain_graph=True)
    assert torch.all(g_vb[:, :3] == 0)                      # ε half: mean is detached
    assert torch.all(g_vb[:, 3:].abs().sum(dim=(1, 2)) > 0)  # v half trained, at t = 0 and t > 0
    g_mse, = torch.autograd.grad(losses["mse"].sum(), out)
    assert torch.all(g_mse[:, 3:] == 0) and torch.all(g_mse[:, :3].abs().sum(dim=(1, 2)) > 0)
    torch.testing.assert_close(losses["loss"], losses["mse"] + losses["vb"])


def test_true_posterior_gives_zero_kl_and_mse():
    """ε̂ = the true noise and v = −1 (Σ = β̃) make p equal to q(x_{t−1}|x_t,x_0) for t ≥ 1."""
    T = 100
    d = GaussianDiffusion(cosine_betas(T), vlb_weight=0.5)
    x0 = torch.rand(3, 2, 5) * 1.6 - 0.8
    t = torch.tensor([1, 30, 99])
    noise = torch.randn_like(x0)
    out = torch.cat([noise, -torch.ones_like(noise)], 1)
    losses = d.training_losses(const_model(out), x0, t, noise=noise)
    assert torch.all(losses["mse"] == 0)
    assert torch.all(losses["vb"].abs() < 1e-3)
    # a wrong variance costs λ·T·KL bits/dim, computed here by hand for the scalar Gaussians
    out[:, 2:] = 1.0
    losses = d.training_losses(const_model(out), x0, t, noise=noise)
    b, pv = d.betas[t.numpy()], d.posterior_variance[t.numpy()]
    kl = 0.5 * (np.log(b / pv) + pv / b - 1) / math.log(2)
    np.testing.assert_allclose(losses["vb"].double().numpy(), 0.5 * T * kl, rtol=2e-3, atol=1e-4)


def test_decoder_nll_at_t0():
    d = GaussianDiffusion(cosine_betas(100), vlb_weight=1.0)
    x0 = torch.tensor([[[-1.0, 1.0, 0.2]]])
    noise = torch.randn_like(x0)
    out = torch.cat([noise, torch.zeros_like(noise)], 1)
    vb = d.training_losses(const_model(out), x0, torch.tensor([0]), noise=noise)["vb"] / 100
    # ε̂ = ε ⇒ predicted x0 exact ⇒ mean = c1·x0 + c2·x1 = x0 (c1 + c2·√ᾱ_1 = 1 at t = 1, ᾱ_0 = 1)
    from scipy import stats
    sd = math.sqrt(math.sqrt(d.betas[0] * d.posterior_variance[1]))
    ref = stats.norm(0, sd)
    p = [ref.cdf(1 / 255), ref.sf(-1 / 255), ref.cdf(1 / 255) - ref.cdf(-1 / 255)]
    want = -np.mean(np.log(p)) / math.log(2)
    assert vb.item() == pytest.approx(want, rel=1e-3)


def test_vb_of_a_mixed_batch_is_each_samples_own():
    """The decoder NLL (t = 0) and the KL (t > 0) land on their own samples, whatever the batch."""
    d = GaussianDiffusion(cosine_betas(100), vlb_weight=1.0)
    x0 = torch.rand(5, 2, 7) * 2 - 1
    out = torch.randn(5, 4, 7)
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 40, 0, 99, 1])
    vb = d.training_losses(const_model(out), x0, t, noise=noise)["vb"]
    alone = [d.training_losses(const_model(out[i:i + 1]), x0[i:i + 1], t[i:i + 1], noise=noise[i:i + 1])["vb"]
             for i in range(5)]
    torch.testing.assert_close(vb, torch.cat(alone), rtol=1e-6, atol=0)
    no_zero = d.training_losses(const_model(out[1:2]), x0[1:2], t[1:2], noise=noise[1:2])["vb"]
    torch.testing.assert_close(no_zero, alone[1], rtol=0, atol=0)


def _eps_oracle(process, x0):
    """A model predicting the exact ε of x_t for the one data point x0 (variance channels v = 0).
    It sees original timesteps: ᾱ from the full process `process` (the base of a respaced one)."""
    abar = torch.as_tensor(process.alphas_cumprod, dtype=torch.float32)

    def model(xt, t_model, cond):
        a = abar[t_model].reshape(-1, 1, 1)
        eps = (xt - a.sqrt() * x0) / (1 - a).sqrt()
        return torch.cat([eps, torch.zeros_like(eps)], dim=1)
    return model


def test_ddim_without_noise_lands_on_the_data_point_the_model_knows():
    """η = 0 and an exact ε: every step's x̂0 is x0, so 10 strided DDIM steps from pure noise end at
    x0 (the ancestral sampler adds noise on the way and does not)."""
    full = GaussianDiffusion(cosine_betas(100))
    spaced = build_diffusion({"steps": 100}, sampling_steps=10)
    x0 = torch.rand(2, 3, 5) * 1.6 - 0.8
    gen = torch.Generator().manual_seed(0)
    out = spaced.p_sample_loop(_eps_oracle(full, x0), x0.shape, generator=gen, sampler="ddim", eta=0.0)
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-4)
    with pytest.raises(SerError, match="sampler must be one of ancestral, ddim"):
        spaced.p_sample_loop(_eps_oracle(full, x0), x0.shape, sampler="euler")


def test_ddim_with_eta_1_is_the_ancestral_step_with_the_posterior_variance():
    """σ² at η = 1 equals β̃_t, and the mean √ᾱ_{t−1}·x̂0 + √(1 − ᾱ_{t−1} − σ²)·ε̂ equals the posterior mean
    of q(x_{t−1} | x_t, x̂0): the same noise gives the same x_{t−1} (on a respaced process)."""
    torch.manual_seed(0)   # the draws below; two fp32 routes to x_{t-1} agree to ~1e-5, not exactly
    full = GaussianDiffusion(cosine_betas(100))
    spaced = build_diffusion({"steps": 100}, sampling_steps=20)
    x0 = torch.rand(3, 2, 4) * 1.6 - 0.8
    model = _eps_oracle(full, torch.rand(3, 2, 4) * 1.6 - 0.8)    # a wrong x0: x̂0 differs from x0
    xt = torch.randn(3, 2, 4)
    t = torch.tensor([19, 7, 1])
    got, x0_hat = spaced.ddim_sample(model, xt, t, eta=1.0, generator=torch.Generator().manual_seed(3))
    z = torch.randn(xt.shape, generator=torch.Generator().manual_seed(3))
    mean, var, _ = spaced.q_posterior_mean_variance(x0_hat, xt, t)
    torch.testing.assert_close(got, mean + var.sqrt() * z, rtol=1e-4, atol=1e-4)


def test_sample_timesteps_uniform():
    d = GaussianDiffusion(cosine_betas(10))
    t, w = d.sample_timesteps(20000, "cpu", torch.Generator().manual_seed(0))
    counts = np.bincount(t.numpy(), minlength=10)
    assert t.min() >= 0 and t.max() <= 9 and torch.all(w == 1)
    assert np.all(np.abs(counts - 2000) < 5 * math.sqrt(2000))


def test_denoiser_shapes_zero_init_and_gradients():
    torch.manual_seed(0)
    m = MelDenoiser({**TINY, "n_mels": 80, "cond_dim": 6})
    assert m.conf["num_layers"] == 2 and len(m.layers) == 2 and len(m.res_blocks) == 1
    for frames in (1, 7, 64):
        x = torch.rand(3, 80, frames) * 2 - 1
        out = m(x, torch.tensor([0, 5, 99]), torch.randn(3, 6))
        assert out.shape == (3, 160, frames)
        assert torch.all(out == 0)
    torch.nn.init.normal_(m.conv_out.weight, std=0.1)
    out = m(torch.rand(2, 80, 9), torch.tensor([3, 70]), torch.randn(2, 6))
    (out ** 2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(SerError, match="expected input"):
        m(torch.zeros(2, 79, 9), torch.tensor([1, 2]), torch.zeros(2, 6))
    with pytest.raises(SerError, match="condition"):
        m(torch.zeros(2, 80, 9), torch.tensor([1, 2]), None)


def test_denoiser_config():
    assert (PAPER_PRESET["channels"], PAPER_PRESET["num_layers"], PAPER_PRESET["num_res_blocks"]) == (1536, 8, 3)
    m = MelDenoiser()
    assert m.conf["channels"] == 192 and len(m.layers) == 8 and len(m.res_blocks) == 3
    assert MelDenoiser({"preset": "cpu", "channels": 64, "heads": 2}).conv_in.out_channels == 64
    uncond = MelDenoiser({**TINY, "cond_dim": 0})
    assert uncond(torch.zeros(1, 8, 4), torch.tensor([3])).shape == (1, 16, 4)
    with pytest.raises(SerError, match="unknown option"):
        MelDenoiser({"chanels": 64})
    with pytest.raises(SerError, match="divisible"):
        MelDenoiser({"channels": 30, "heads": 4})
    with pytest.raises(SerError, match="unknown preset"):
        MelDenoiser("huge")


def test_autocast_bf16_is_finite_and_loss_fp32():
    torch.manual_seed(0)
    m = MelDenoiser(TINY)
    torch.nn.init.normal_(m.conv_out.weight, std=0.1)
    d = GaussianDiffusion(cosine_betas(100))
    x0 = torch.rand(4, 8, 16) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x0, torch.tensor([0, 1, 50, 99]), torch.randn(4, 2))
        losses = d.training_losses(m, x0, torch.tensor([0, 1, 50, 99]), torch.randn(4, 2))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in losses.values())
    losses["loss"].mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


def test_ema_update_copy_and_state_dict():
    net = torch.nn.Linear(3, 2)
    w0 = net.weight.detach().clone()
    ema = EMA(net, decay=0.75)
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.shadow["weight"], 0.75 * w0 + 0.25 * (w0 + 1.0))
    buf = io.BytesIO()
    torch.save(ema.state_dict(), buf)
    buf.seek(0)
    other = EMA(torch.nn.Linear(3, 2), decay=0.1)
    other.load_state_dict(torch.load(buf))
    assert other.decay == 0.75 and other.num_updates == 1
    target = torch.nn.Linear(3, 2)
    other.copy_to(target)
    torch.testing.assert_close(target.weight.detach(), 0.75 * w0 + 0.25 * (w0 + 1.0))
    with pytest.raises(SerError, match="differ"):
        EMA(torch.nn.Linear(3, 2, bias=False)).load_state_dict(ema.state_dict())
    warm = EMA(net, decay=0.999, warmup=True)
    assert warm.current_decay() == pytest.approx(0.1)


def test_sampling_is_reproducible_with_a_generator():
    m = MelDenoiser(TINY)
    torch.nn.init.normal_(m.conv_out.weight, std=0.05)
    d = build_diffusion({"steps": 20}, sampling_steps=5)
    cond = torch.eye(2)
    a = d.p_sample_loop(m, (2, 8, 6), cond, generator=torch.Generator().manual_seed(3))
    b = d.p_sample_loop(m, (2, 8, 6), cond, generator=torch.Generator().manual_seed(3))
    c = d.p_sample_loop(m, (2, 8, 6), cond, generator=torch.Generator().manual_seed(4))
    assert a.shape == (2, 8, 6) and torch.equal(a, b) and not torch.equal(a, c)


def toy_batch(mode, frames=16):
    """Mode 0: every bin +0.5; mode 1: every bin −0.5."""
    x0 = torch.where(mode[:, None, None] == 0, 0.5, -0.5).expand(len(mode), TINY["n_mels"], frames)
    return x0.contiguous(), F.one_hot(mode, 2).float()


def test_toy_two_mode_training_and_conditioning():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    train = build_diffusion({"steps": 100})
    m = MelDenoiser(TINY)
    ema = EMA(m, decay=0.9, warmup=True)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(300):
        x0, cond = toy_batch(torch.randint(0, 2, (64,), generator=g))
        t, w = train.sample_timesteps(64, "cpu", g)
        loss = (train.training_losses(m, x0, t, cond, generator=g)["loss"] * w).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update(m)
    ema.copy_to(m)
    m.eval()
    sampler = build_diffusion({"steps": 100}, sampling_steps=25)
    n = 16
    noise = torch.randn(n, TINY["n_mels"], 16, generator=g)
    noise_mad = torch.minimum((noise - 0.5).abs().mean((1, 2)), (noise + 0.5).abs().mean((1, 2))).mean()
    samples = {}
    for mode in (0, 1):
        _, cond = toy_batch(torch.full((n,), mode))
        samples[mode] = sampler.p_sample_loop(m, noise.shape, cond, noise=noise,
                                              generator=torch.Generator().manual_seed(1))
    for mode, target in ((0, 0.5), (1, -0.5)):
        x = samples[mode]
        mad_own = (x - target).abs().mean().item()
        mad_other = (x + target).abs().mean().item()
        # close to the asked-for mode, far from the other, and much closer than noise is
        # (MAD ≈ 0.2 after this short training against ≈ 0.85 for noise)
        assert mad_own < 0.5 * noise_mad.item(), (mode, mad_own, noise_mad.item())
        assert mad_other > 0.7, (mode, mad_other)
    # same noise, different condition → different samples, of opposite sign on average
    assert samples[0].mean() > 0.3 and samples[1].mean() < -0.3
