"""Diagnostics of a trained diffusion model, written to `<run dir>/diagnostics/`.

On real segments (the fold's validation speakers, ser.diffusion.data.load_diagnostic_segments),
with fixed noise, at t = 0, 10, 25, 50, 75, 90 and 97.5 % of T:
- `eps_mse`: mean (ε̂ − ε)², ε̂ implied by the model's prediction (whatever its target);
- `x0_mad`: mean |x̂0 − x0| of the clipped predicted x0, in scaled-mel units (normalisation undone);
- `x0_harmonicity`: the harmonicity of x̂0 (ser.diffusion.quality; nan for a mel too coarse to
  resolve harmonics), to read against the real segments' (`harmonicity_real`): up to which t
  the model puts back the pitch harmonics that the noise in x_t has buried.
A model that keeps x0_mad far below the data's spread at high t can find its way from noise.

On `samples` segments sampled with the EMA weights (S = `sampling_steps`, conditions drawn from
the TRAINING combinations, round-robin over emotions), against the real segments:
- `mean`, `pad_frac` (fraction of frames whose every band is below -0.95: padded silence, as
  ser.bin.generate trims it), `quiet_frac` (frames whose MEAN over bands is below -0.9: silence
  with some grain left),
  `band_mean_mae` (mean over bands of |per-band mean of samples − of real|; per-band means in
  samples.json), `dt_rough`/`df_rough` (mean |difference| of neighbouring frames / bands:
  noise is rough in both, speech is smooth in time within a band and shows harmonic ridges);
- `mad` / `mad_real`: MAD to the real mean segment of the sample's emotion, and that of the real
  segments themselves (ser.diffusion.quality.mad_table, row "all");
- `harmonicity_syn` / `_real` / `_noise`: the pitch-harmonic ripple of the low mel bands, of the
  samples, the real segments and white noise (ser.diffusion.quality, row "all"): samples near
  the noise score have no harmonics however good their MAD.
Files: by_t.tsv, samples.json, summary.json and mel_grid.png (real vs synthetic per emotion).
"""
import json
import os

import numpy as np
import torch

from ser.data.atomic import atomic_write_text
from ser.diffusion.normalize import BandNorm
from ser.diffusion.quality import harmonic_bands, harmonicity, harmonicity_table, mad_table, mel_grid_png
from ser.diffusion.respace import build_diffusion
from ser.diffusion.sampling import PAD_THRESHOLD, sample_segments
from ser.errors import SerError
from ser.runtime.precision import autocast, runnable_precision

T_FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
QUIET_THRESHOLD = -0.9


def spread(n_total, n):
    """n evenly spaced indices of range(n_total) (all of them when n >= n_total)."""
    if n >= n_total:
        return list(range(n_total))
    return sorted({int(i) for i in np.linspace(0, n_total - 1, n)})


@torch.no_grad()
def error_by_t(nets, meta, segments, conditions, device, seed, batch=16):
    """Rows {t, eps_mse, x0_mad} of the model on real `segments` (N, C, L) in [-1, 1]."""
    diffusion = build_diffusion(meta["process"])
    norm = BandNorm.from_meta(meta)
    if norm is not None:
        diffusion.set_clip_bounds(*norm.bounds())
    T = diffusion.num_timesteps
    precision = runnable_precision(meta.get("precision", "fp32"), device)
    x0_all = torch.from_numpy(np.asarray(segments, dtype=np.float32)).to(device)
    gen = torch.Generator(device).manual_seed(seed)
    noise_all = torch.randn(x0_all.shape, generator=gen, device=device)
    try:
        low, lags = harmonic_bands(meta.get("feat_conf"), x0_all.shape[1])
    except SerError:
        low = lags = None
    rows = []
    for frac in T_FRACTIONS:
        step = min(int(round(frac * T)), T - 1)
        sums = {"eps": 0.0, "x0": 0.0}
        x0_hats = []
        for lo in range(0, len(x0_all), batch):
            x0 = x0_all[lo:lo + batch]
            noise = noise_all[lo:lo + batch]
            y0 = x0 if norm is None else norm.forward(x0)
            t = torch.full((len(x0),), step, dtype=torch.long, device=device)
            xt = diffusion.q_sample(y0, t, noise)
            with autocast(precision, device):
                cond = nets["conditioner"](conditions[lo:lo + batch])
                out = diffusion.p_mean_variance(nets["denoiser"], xt, t, cond)
            x0_hat = out["pred_x0"] if norm is None else norm.inverse(out["pred_x0"])
            sums["eps"] += float(((out["eps"] - noise) ** 2).mean(dim=(1, 2)).sum())
            sums["x0"] += float((x0_hat - x0).abs().mean(dim=(1, 2)).sum())
            x0_hats.append(x0_hat.float().clamp(-1.0, 1.0).cpu().numpy())
        harmonic = harmonicity(np.concatenate(x0_hats), low, lags)[0] if low else float("nan")
        rows.append({"t": step, "eps_mse": sums["eps"] / len(x0_all), "x0_mad": sums["x0"] / len(x0_all),
                     "x0_harmonicity": harmonic})
    return rows


def segment_stats(x):
    """Statistics of (N, C, L) segments (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    return {"mean": float(x.mean()), "pad_frac": float((x.max(axis=1) < PAD_THRESHOLD).mean()),
            "quiet_frac": float((x.mean(axis=1) < QUIET_THRESHOLD).mean()),
            "dt_rough": float(np.abs(np.diff(x, axis=2)).mean()),
            "df_rough": float(np.abs(np.diff(x, axis=1)).mean()),
            "band_means": x.mean(axis=(0, 2)).tolist()}


def sample_conditions(data, n):
    """(conditions, emotions) of n samples, round-robin over the emotions of `data`."""
    emotions = sorted(set(data.emotions) & set(data.sample_conditions))
    conds, emos = [], []
    for k in range(n):
        emo = emotions[k % len(emotions)]
        pool = sorted(set(data.sample_conditions[emo]))
        conds.append(pool[(k // len(emotions)) * 7 % len(pool)])
        emos.append(emo)
    return conds, emos


def run_diagnostics(nets, meta, data, outdir, device, seed):
    """Write the diagnostics of `nets` (EMA weights, eval mode) into `outdir`; returns a summary
    dict of scalars. `data`: ser.diffusion.data.DiagnosticSegments."""

    device = torch.device(device)
    conf = meta["config"]["diagnostics"]
    os.makedirs(outdir, exist_ok=True)
    idx = spread(len(data.segments), conf["segments"])
    real = data.segments[idx]
    rows = error_by_t(nets, meta, real, [data.conditions[i] for i in idx], device, seed)
    atomic_write_text(os.path.join(outdir, "by_t.tsv"), "t\teps_mse\tx0_mad\tx0_harmonicity\n" + "".join(
        f"{r['t']}\t{r['eps_mse']:.6g}\t{r['x0_mad']:.6g}\t{r['x0_harmonicity']:.4f}\n" for r in rows))
    summary = {"x0_mad_tmax": rows[-1]["x0_mad"], "eps_mse_tmax": rows[-1]["eps_mse"],
               "x0_mad_mean": float(np.mean([r["x0_mad"] for r in rows]))}
    report = {"source": data.source, "n_real": len(data.segments), "by_t": rows}
    if conf["samples"] > 0:
        steps = min(conf["sampling_steps"], meta["process"]["steps"])
        conds, emos = sample_conditions(data, conf["samples"])
        syn = sample_segments(nets, meta, conds, steps, 16, device, seed, progress=False)
        real_stats, syn_stats = segment_stats(data.segments), segment_stats(syn)
        real_by, syn_by = {}, {}
        for seg, emo in zip(data.segments, data.emotions):
            real_by.setdefault(emo, []).append(seg)
        for seg, emo in zip(syn, emos):
            syn_by.setdefault(emo, []).append(seg)
        real_by = {e: np.stack(v) for e, v in real_by.items()}
        syn_by = {e: np.stack(v) for e, v in syn_by.items()}
        mad = mad_table(real_by, syn_by)[-1]
        band_mae = float(np.abs(np.subtract(syn_stats["band_means"], real_stats["band_means"])).mean())
        for key in ("mean", "pad_frac", "quiet_frac", "dt_rough", "df_rough"):
            summary[f"{key}_syn"], summary[f"{key}_real"] = syn_stats[key], real_stats[key]
        summary.update(band_mean_mae=band_mae, mad=mad["mad"], mad_real=mad["mad_real"])
        report.update(sampling_steps=steps, conditions=conds, real=real_stats, synthetic=syn_stats,
                      band_mean_mae=band_mae, mad=mad)
        try:
            harmonic = harmonicity_table(real_by, syn_by, meta.get("feat_conf"))["all"]
        except SerError as e:     # e.g. a test-sized mel with too few low bands: no harmonics to resolve
            report["harmonicity"] = str(e)
        else:
            summary.update({f"harmonicity_{k}": harmonic[f"harmonicity{s}"]
                            for k, s in (("syn", ""), ("real", "_real"), ("noise", "_noise"))})
            report["harmonicity"] = harmonic
        mel_grid_png(os.path.join(outdir, "mel_grid.png"), real_by, syn_by, per_emotion=2,
                     title=f"{data.source} real vs EMA samples (S={steps}, step {meta.get('step')})")
    atomic_write_text(os.path.join(outdir, "samples.json"), json.dumps(report, indent=1) + "\n")
    atomic_write_text(os.path.join(outdir, "summary.json"), json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def main(argv=None):
    """(Re)write the diagnostics of a finished run: python -m ser.diffusion.diagnostics --model-dir
    DIR [--out DIR/diagnostics] [--num-threads N]; data, fold and options come from its config."""
    import argparse

    from ser.diffusion.data import load_diagnostic_segments, load_training_segments
    from ser.diffusion.model_io import load_diffusion_model

    p = argparse.ArgumentParser(prog="ser.diffusion.diagnostics", description=main.__doc__)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--out", default=None)
    p.add_argument("--num-threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    nets, meta = load_diffusion_model(args.model_dir)
    cfg = meta["config"]
    seg, data = cfg["segment"], cfg["data"]
    train = load_training_segments(data["feats_dir"], data["fold_dir"], data["text_dir"], seg["length"],
                                   seg["shift"], seg["pad_value"])
    diag = load_diagnostic_segments(data["feats_dir"], data["fold_dir"], data["text_dir"], train, seg["length"],
                                    seg["shift"], seg["pad_value"])
    summary = run_diagnostics(nets, meta, diag, args.out or os.path.join(args.model_dir, "diagnostics"), "cpu",
                              cfg["seed"])
    print(" ".join(f"{k} {v:.4g}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    from ser.errors import run_main
    run_main(main)

