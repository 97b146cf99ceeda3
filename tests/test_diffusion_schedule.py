"""Cosine schedule, closed-form process coefficients, q sampling, the likelihood terms and the
strided respacing, each against an independent numpy/scipy or hand-derived reference."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from ser.diffusion import (GaussianDiffusion, SpacedDiffusion, build_diffusion, cosine_betas, respace_betas,
                           space_timesteps)
from ser.diffusion.losses import discretized_gaussian_log_likelihood, normal_kl
from ser.errors import SerError


def reference_cosine_betas(T, s=0.008):
    """Plain-python recomputation of Nichol & Dhariwal eq. 17 with β clipped at 0.999."""
    f = [math.cos(((t / T) + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    abar = [ft / f[0] for ft in f]
    return np.array([min(1 - abar[t] / abar[t - 1], 0.999) for t in range(1, T + 1)])


@pytest.mark.parametrize("T", [100, 1000, 4000])
def test_cosine_schedule_shape_and_formula(T):
    betas = cosine_betas(T)
    assert betas.dtype == np.float64 and betas.shape == (T,)
    np.testing.assert_allclose(betas, reference_cosine_betas(T), rtol=1e-12, atol=1e-15)
    abar = np.cumprod(1 - betas)
    assert abar[0] > 0.999 and betas[0] < 1e-3          # ᾱ_1 ≈ 1: the first step adds little noise
    assert abar[-1] < 1e-6                             # ᾱ_T ≈ 0: x_T is pure noise
    assert np.all(np.diff(betas) >= 0)
    assert betas.max() <= 0.999 and betas[-1] == pytest.approx(0.999)


def test_schedule_rejects_bad_steps():
    with pytest.raises(SerError, match="positive integer"):
        cosine_betas(0)
    with pytest.raises(SerError, match="unknown noise schedule"):
        build_diffusion({"steps": 10, "schedule": "quadratic"})
    with pytest.raises(SerError, match="unknown option"):
        build_diffusion({"steps": 10, "step": 3})


def test_process_arrays_match_closed_form():
    T = 50
    b = cosine_betas(T)
    d = GaussianDiffusion(b)
    a = 1 - b
    abar = np.array([np.prod(a[: i + 1]) for i in range(T)])
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    for name in ("betas", "alphas_cumprod", "alphas_cumprod_prev", "alphas_cumprod_next", "sqrt_alphas_cumprod",
                 "sqrt_one_minus_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                 "posterior_mean_coef1", "posterior_mean_coef2"):
        arr = getattr(d, name)
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == (T,), name
    np.testing.assert_allclose(d.alphas_cumprod, abar, rtol=1e-12)
    np.testing.assert_allclose(d.alphas_cumprod_prev, abar_prev, rtol=1e-12)
    np.testing.assert_allclose(d.alphas_cumprod_next, np.append(abar[1:], 0.0), rtol=1e-12)
    np.testing.assert_allclose(d.sqrt_alphas_cumprod ** 2, abar, rtol=1e-12)
    np.testing.assert_allclose(d.sqrt_one_minus_alphas_cumprod ** 2, 1 - abar, rtol=1e-12)
    tilde = b * (1 - abar_prev) / (1 - abar)
    np.testing.assert_allclose(d.posterior_variance, tilde, rtol=1e-12)
    assert d.posterior_variance[0] == 0.0
    np.testing.assert_allclose(d.posterior_log_variance_clipped[1:], np.log(tilde[1:]), rtol=1e-12)
    assert d.posterior_log_variance_clipped[0] == pytest.approx(np.log(tilde[1]))   # log 0 avoided
    np.testing.assert_allclose(d.posterior_mean_coef1, b * np.sqrt(abar_prev) / (1 - abar), rtol=1e-12)
    np.testing.assert_allclose(d.posterior_mean_coef2, (1 - abar_prev) * np.sqrt(a) / (1 - abar), rtol=1e-12)


@pytest.mark.parametrize("i", [1, 7, 30, 49])
def test_q_posterior_is_gaussian_conditioning(i):
    """x_{t-1}, x_t | x_0 are jointly Gaussian; condition x_{t-1} on x_t by the textbook formula."""
    d = GaussianDiffusion(cosine_betas(50))
    abar = np.cumprod(1 - d.betas)
    x0, xt = 0.3, -0.7
    abar_t, abar_prev, alpha_t = abar[i], abar[i - 1], 1 - d.betas[i]
    m_prev, m_t = math.sqrt(abar_prev) * x0, math.sqrt(abar_t) * x0
    var_prev, var_t = 1 - abar_prev, 1 - abar_t
    cov = math.sqrt(alpha_t) * var_prev          # Cov(x_{t-1}, √α_t x_{t-1} + √β_t ε)
    want_mean = m_prev + cov / var_t * (xt - m_t)
    want_var = var_prev - cov ** 2 / var_t
    t = torch.tensor([i])
    mean, var, logvar = d.q_posterior_mean_variance(torch.tensor([x0]), torch.tensor([xt]), t)
    assert mean.item() == pytest.approx(want_mean, rel=1e-5, abs=1e-6)
    assert var.item() == pytest.approx(want_var, rel=1e-5)
    assert logvar.item() == pytest.approx(math.log(want_var), rel=1e-5)


def test_q_sample_moments():
    d = GaussianDiffusion(cosine_betas(100))
    n = 20000
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((n,), 0.8)
    for i in (0, 10, 50, 90, 99):
        t = torch.full((n,), i)
        xt = d.q_sample(x0, t, generator=g).double().numpy()
        mean, var = math.sqrt(d.alphas_cumprod[i]) * 0.8, 1 - d.alphas_cumprod[i]
        assert abs(xt.mean() - mean) < 5 * math.sqrt(var / n) + 1e-6, i
        assert xt.var() == pytest.approx(var, rel=5 * math.sqrt(2 / n)), i
    # explicit noise is used as given
    noise = torch.randn(4, 3)
    t = torch.tensor([0, 5, 20, 99])
    xt = d.q_sample(torch.zeros(4, 3), t, noise)
    np.testing.assert_allclose(xt.numpy(), d.sqrt_one_minus_alphas_cumprod[t.numpy()][:, None] * noise.numpy(),
                               rtol=1e-6)


def test_normal_kl():
    z = torch.zeros(())
    assert normal_kl(torch.tensor(0.4), torch.tensor(-1.2), torch.tensor(0.4), torch.tensor(-1.2)).item() == 0.0
    m1, v1, m2, v2 = 0.3, 0.5, -0.2, 2.0
    closed = math.log(math.sqrt(v2 / v1)) + (v1 + (m1 - m2) ** 2) / (2 * v2) - 0.5
    p, q = stats.norm(m1, math.sqrt(v1)), stats.norm(m2, math.sqrt(v2))
    numeric, _ = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -20, 20)
    got = normal_kl(z + m1, z + math.log(v1), z + m2, z + math.log(v2)).item()
    assert got == pytest.approx(closed, rel=1e-5)
    assert got == pytest.approx(numeric, rel=1e-5)


@pytest.mark.parametrize("mean,scale", [(0.0, 0.01), (0.3, 0.2), (-0.9, 1.0), (0.999, 0.003), (2.0, 0.5)])
def test_discretized_loglik_is_a_distribution_over_bins(mean, scale):
    x = torch.linspace(-1, 1, 256, dtype=torch.float64)   # bin centres -1 + 2k/255
    logp = discretized_gaussian_log_likelihood(x, torch.full_like(x, mean), torch.full_like(x, math.log(scale)))
    assert abs(logp.exp().sum().item() - 1.0) < 1e-4
    # an interior bin and the two edge bins against scipy
    ref = stats.norm(mean, scale)
    k = 128
    lo, hi = x[k].item() - 1 / 255, x[k].item() + 1 / 255
    assert logp[k].exp().item() == pytest.approx(ref.cdf(hi) - ref.cdf(lo), abs=1e-9)
    assert logp[0].exp().item() == pytest.approx(ref.cdf(-1 + 1 / 255), abs=1e-9)
    assert logp[255].exp().item() == pytest.approx(ref.sf(1 - 1 / 255), abs=1e-9)


def test_space_timesteps():
    assert space_timesteps(10, 10) == list(range(10))
    kept = space_timesteps(100, 25)
    assert len(kept) == 25 and kept[0] == 0 and kept[-1] == 99
    assert set(np.diff(kept)) <= {4, 5}
    assert space_timesteps(4000, 50)[:3] == [0, 82, 163]           # round(k·3999/49)
    assert space_timesteps(100, 1) == [99]
    with pytest.raises(SerError, match="sampling steps"):
        space_timesteps(100, 101)


@pytest.mark.parametrize("S", [50, 100, 250, 4000])
def test_respacing_keeps_alpha_bar(S):
    T = 4000
    base = GaussianDiffusion(cosine_betas(T))
    kept = space_timesteps(T, S)
    new_betas, tmap = respace_betas(base.betas, kept)
    assert tmap.tolist() == kept
    spaced = SpacedDiffusion(base.betas, kept)
    assert spaced.num_timesteps == S and spaced.timestep_map.tolist() == kept
    # exact up to float64 rounding of 1 − β when β is within ~1e-6 of 1 (last strided step)
    np.testing.assert_allclose(np.cumprod(1 - new_betas), base.alphas_cumprod[kept], rtol=1e-9)
    np.testing.assert_allclose(spaced.alphas_cumprod, base.alphas_cumprod[kept], rtol=1e-9)
    np.testing.assert_allclose(spaced.alphas_cumprod[:-1], base.alphas_cumprod[kept][:-1], rtol=1e-12)
    if S == T:
        np.testing.assert_allclose(new_betas, base.betas, rtol=1e-9, atol=1e-15)


def test_spaced_model_sees_original_steps():
    base_betas = cosine_betas(100)
    spaced = build_diffusion({"steps": 100}, sampling_steps=25)
    assert isinstance(spaced, SpacedDiffusion)
    seen = []

    def model(x, t, cond):
        seen.append(t.tolist())
        return torch.zeros(x.shape[0], 2 * x.shape[1], *x.shape[2:])

    t = torch.tensor([0, 3, 24])
    spaced.p_mean_variance(model, torch.zeros(3, 2), t)
    assert seen[-1] == [spaced.timestep_map[i] for i in (0, 3, 24)] == [0, 12, 99]
    spaced.p_sample_loop(model, (2, 2), generator=torch.Generator().manual_seed(0))
    assert [s[0] for s in seen[1:]] == space_timesteps(100, 25)[::-1]
    np.testing.assert_allclose(spaced.alphas_cumprod, np.cumprod(1 - base_betas)[space_timesteps(100, 25)],
                               rtol=1e-12)
