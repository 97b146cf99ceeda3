"""Improved DDPM (Nichol & Dhariwal 2021): forward process, learned-variance reverse process,
the hybrid training loss and ancestral sampling.

Conventions:
- arrays are float64 numpy of length T; index i = 0..T-1 is the paper's step t = i + 1, so the
  "t" given to every method is this 0-based index (a LongTensor of shape (B,));
- data x0 lives in [-1, 1]; the model is called as `model(x_t, t_model, cond)` and returns
  2·C channels along dim 1: ε (first C) and the variance interpolation v (last C);
- the variance is Σ = exp(f·log β_t + (1 − f)·log β̃_t) with f = (v + 1)/2 (paper eq. 15);
- all loss and posterior maths runs in float32 with autocast disabled, whatever precision the
  model ran in.
"""
import numpy as np
import torch
from tqdm import tqdm

from ser.diffusion.losses import LOG2, discretized_gaussian_log_likelihood, mean_flat, normal_kl
from ser.errors import SerError


class GaussianDiffusion:
    """Diffusion process for a given beta schedule, with learned (interpolated) variances.

    Args:
        betas: 1-D array of β_1..β_T in (0, 1].
        vlb_weight: λ of the hybrid loss L_simple + λ·L_vlb (paper: 0.001). L_vlb is estimated
            from the one sampled step as T·L_t, i.e. the per-sample term is λ·T·L_t in bits/dim
            (the same as the reference "rescaled MSE" loss, which multiplies L_t by T/1000).
    """

    def __init__(self, betas, vlb_weight=0.001):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or betas.size < 1:
            raise SerError(f"diffusion: betas must be a non-empty 1-D array, got shape {betas.shape}")
        if not (np.all(betas > 0) and np.all(betas <= 1)):
            raise SerError("diffusion: every beta must lie in (0, 1]")
        if vlb_weight < 0:
            raise SerError(f"diffusion: vlb_weight must be >= 0, got {vlb_weight}")
        self.betas = betas
        self.num_timesteps = T = betas.size
        self.vlb_weight = float(vlb_weight)

        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
        assert self.alphas_cumprod_prev.shape == (T,)

        # q(x_t | x_0)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1.0)

        # q(x_{t-1} | x_t, x_0) = N(coef1·x_0 + coef2·x_t, β̃_t)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # β̃ is 0 at the first step; log(0) would poison the interpolation, so use β̃ of step 2.
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:]) if T > 1
            else np.array([betas[0]]))
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)
        self.log_betas = np.log(betas)
        self._cache = {}

    # ---------------------------------------------------------------- helpers
    def _extract(self, name, t, ndim):
        """getattr(self, name)[t] as float32 on t's device, shaped (B, 1, ..., 1) for broadcasting."""
        key = (name, t.device)
        table = self._cache.get(key)
        if table is None:
            table = torch.as_tensor(getattr(self, name), dtype=torch.float32, device=t.device)
            self._cache[key] = table
        out = table[t.long()]
        return out.reshape(out.shape + (1,) * (ndim - 1))

    def model_timesteps(self, t):
        """The timestep the model sees for process index t (identity here; respacing maps it)."""
        return t

    def _call_model(self, model, xt, t, cond):
        out = model(xt, self.model_timesteps(t), cond)
        if out.shape[0] != xt.shape[0] or out.shape[1] != 2 * xt.shape[1] or out.shape[2:] != xt.shape[2:]:
            raise SerError(f"diffusion: model output {tuple(out.shape)} must be (B, 2·C, ...) for input "
                           f"{tuple(xt.shape)} (ε and variance channels)")
        return out.float()

    def sample_timesteps(self, batch_size, device, generator=None):
        """Uniform t in [0, T) and per-sample loss weights (all ones: no importance sampling)."""
        gen_device = generator.device if generator is not None else device
        t = torch.randint(0, self.num_timesteps, (batch_size,), generator=generator, device=gen_device)
        return t.to(device), torch.ones(batch_size, device=device)

    # ---------------------------------------------------------------- forward process
    def q_mean_variance(self, x0, t):
        """Mean, variance and log variance of q(x_t | x_0)."""
        mean = self._extract("sqrt_alphas_cumprod", t, x0.dim()) * x0
        var = self._extract("alphas_cumprod", t, x0.dim())
        return mean, 1.0 - var, self._extract("log_one_minus_alphas_cumprod", t, x0.dim())

    def q_sample(self, x0, t, noise=None, generator=None):
        """Draw x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)."""
        if noise is None:
            gen_device = generator.device if generator is not None else x0.device
            noise = torch.randn(x0.shape, generator=generator, device=gen_device, dtype=x0.dtype).to(x0.device)
        return (self._extract("sqrt_alphas_cumprod", t, x0.dim()) * x0
                + self._extract("sqrt_one_minus_alphas_cumprod", t, x0.dim()) * noise)

    def q_posterior_mean_variance(self, x0, xt, t):
        """Mean, variance and clipped log variance of q(x_{t−1} | x_t, x_0)."""
        n = xt.dim()
        mean = self._extract("posterior_mean_coef1", t, n) * x0 + self._extract("posterior_mean_coef2", t, n) * xt
        return (mean, self._extract("posterior_variance", t, n),
                self._extract("posterior_log_variance_clipped", t, n))

    # ---------------------------------------------------------------- reverse process
    def predict_x0_from_eps(self, xt, t, eps):
        """x_0 = (x_t − √(1 − ᾱ_t) ε)/√ᾱ_t."""
        n = xt.dim()
        return self._extract("sqrt_recip_alphas_cumprod", t, n) * xt - self._extract("sqrt_recipm1_alphas_cumprod", t, n) * eps

    def p_mean_variance_from_output(self, output, xt, t, clip_denoised=True):
        """Mean and variance of p(x_{t−1} | x_t) from a model output (B, 2C, ...).

        Returns a dict with `mean`, `variance`, `log_variance`, `pred_x0` and `eps`.
        """
        with torch.autocast(device_type=xt.device.type, enabled=False):
            output, xt = output.float(), xt.float()
            eps, v = torch.chunk(output, 2, dim=1)
            n = xt.dim()
            min_log = self._extract("posterior_log_variance_clipped", t, n)   # log β̃_t
            max_log = self._extract("log_betas", t, n)                        # log β_t
            frac = (v + 1.0) / 2.0                                           # v ∈ [-1, 1] → [0, 1]
            log_variance = frac * max_log + (1.0 - frac) * min_log
            pred_x0 = self.predict_x0_from_eps(xt, t, eps)
            if clip_denoised:
                pred_x0 = pred_x0.clamp(-1.0, 1.0)
            mean, _, _ = self.q_posterior_mean_variance(pred_x0, xt, t)
            return {"mean": mean, "variance": torch.exp(log_variance), "log_variance": log_variance,
                    "pred_x0": pred_x0, "eps": eps}

    def p_mean_variance(self, model, xt, t, cond=None, clip_denoised=True):
        """Run the model on (x_t, t, cond) and return `p_mean_variance_from_output`'s dict."""
        return self.p_mean_variance_from_output(self._call_model(model, xt, t, cond), xt, t, clip_denoised)

    def p_sample(self, model, xt, t, cond=None, clip_denoised=True, generator=None):
        """One ancestral step x_t → x_{t−1} (no noise is added at the last step, t = 0)."""
        out = self.p_mean_variance(model, xt, t, cond, clip_denoised)
        gen_device = generator.device if generator is not None else xt.device
        noise = torch.randn(xt.shape, generator=generator, device=gen_device).to(xt.device)
        nonzero = (t != 0).float().reshape((-1,) + (1,) * (xt.dim() - 1))
        return out["mean"] + nonzero * torch.exp(0.5 * out["log_variance"]) * noise, out["pred_x0"]

    @torch.no_grad()
    def p_sample_loop(self, model, shape, cond=None, generator=None, progress=False, noise=None,
                      device=None, clip_denoised=True):
        """Generate samples of `shape` from x_T ~ N(0, I) through all T steps of this process.

        `device` defaults to cond's (or noise's) device, else CPU; `generator` (a torch.Generator,
        on any device) makes the run reproducible; `progress` shows a tqdm bar.
        """
        if device is None:
            device = (noise.device if noise is not None else cond.device if cond is not None
                      else torch.device("cpu"))
        if noise is None:
            gen_device = generator.device if generator is not None else device
            noise = torch.randn(tuple(shape), generator=generator, device=gen_device)
        x = noise.to(device=device, dtype=torch.float32)
        steps = range(self.num_timesteps - 1, -1, -1)
        for i in tqdm(steps, desc="sampling", disable=not progress, leave=False):
            t = torch.full((x.shape[0],), i, device=device, dtype=torch.long)
            x, _ = self.p_sample(model, x, t, cond, clip_denoised, generator)
        return x

    # ---------------------------------------------------------------- training
    def vb_terms_bpd(self, output, x0, xt, t, clip_denoised=False):
        """Per-sample L_t in bits/dim: KL(q(x_{t−1}|x_t,x_0) || p(x_{t−1}|x_t)) for t > 0 and
        the discretised Gaussian decoder NLL −log p(x_0|x_1) at t = 0."""
        with torch.autocast(device_type=xt.device.type, enabled=False):
            x0, xt = x0.float(), xt.float()
            true_mean, _, true_log_var = self.q_posterior_mean_variance(x0, xt, t)
            out = self.p_mean_variance_from_output(output, xt, t, clip_denoised)
            kl = mean_flat(normal_kl(true_mean, true_log_var, out["mean"], out["log_variance"])) / LOG2
            nll = -mean_flat(discretized_gaussian_log_likelihood(
                x0, out["mean"], 0.5 * out["log_variance"])) / LOG2
            return torch.where(t == 0, nll, kl)

    def training_losses(self, model, x0, t, cond=None, noise=None, generator=None):
        """Hybrid loss L_simple + λ·L_vlb per sample.

        Returns a dict of (B,) float32 tensors: `loss`, `mse` (L_simple: MSE on ε, mean over
        dims) and `vb` (λ·T·L_t in bits/dim). The L_vlb term sees the predicted mean DETACHED, so
        its gradient reaches only the variance output v (paper §3.1); L_simple trains ε.
        """
        if noise is None:
            gen_device = generator.device if generator is not None else x0.device
            noise = torch.randn(x0.shape, generator=generator, device=gen_device, dtype=x0.dtype).to(x0.device)
        xt = self.q_sample(x0, t, noise)
        output = self._call_model(model, xt, t, cond)
        with torch.autocast(device_type=x0.device.type, enabled=False):
            eps, v = torch.chunk(output, 2, dim=1)
            mse = mean_flat((noise.float() - eps) ** 2)
            frozen = torch.cat([eps.detach(), v], dim=1)
            vb = self.vb_terms_bpd(frozen, x0, xt, t) * (self.vlb_weight * self.num_timesteps)
            return {"loss": mse + vb, "mse": mse, "vb": vb}
