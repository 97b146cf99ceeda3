"""Quality of synthetic mel segments: MAD per emotion (paper 2, Table 1), a real-vs-synthetic
spectrogram grid (Fig. 2) and Griffin-Lim audio for listening.

MAD (mean absolute difference), our precise definition. Real and synthetic utterances are cut
into the diffusion model's (n_mels, 256) segments (pad value -1, ser.runtime.segments.segment_matrix).
For emotion e with real segments R_e and synthetic segments S_e, the reference is the MEAN REAL
SEGMENT  M_e = mean_{r in R_e} r  (element-wise, n_mels x 256), and

    MAD_e = mean_{s in S_e} mean_{f,t} |s[f, t] - M_e[f, t]|      (in scaled-mel units, [-1, 1])

Why the mean segment rather than the nearest real segment: it is one deterministic reference per
emotion, linear in the data size, and it does not reward memorisation (a model that copies
training segments would score a nearest-neighbour MAD of 0). Two companion columns make the
number interpretable: `mad_real` is the same quantity for the real segments themselves (how far
a real segment of e lies from M_e: a synthetic MAD close to it means realistic spread), and
`mad_nearest` is the mean over s of min_{r in R_e} mean|s - r| (near 0: copies of training data).
The row `all` pools every synthetic (real) segment, each against its own emotion's M_e.
"""
import math

import numpy as np

from ser.errors import SerError


def mad_to_mean(synthetic, reference_mean):
    """Mean over segments of mean |s - M| (synthetic: (n, F, T), reference_mean: (F, T))."""
    synthetic = np.asarray(synthetic, dtype=np.float64)
    return float(np.abs(synthetic - np.asarray(reference_mean, dtype=np.float64)[None]).mean(axis=(1, 2)).mean())


def mad_nearest(synthetic, real, chunk=64):
    """Mean over synthetic segments of the MAD to the nearest real segment."""
    real = np.asarray(real, dtype=np.float32).reshape(len(real), -1)
    best = []
    for start in range(0, len(synthetic), chunk):
        s = np.asarray(synthetic[start:start + chunk], dtype=np.float32).reshape(-1, 1, real.shape[1])
        best.append(np.abs(s - real[None]).mean(axis=2).min(axis=1))
    return float(np.concatenate(best).astype(np.float64).mean())


def mad_table(real_by_emotion, synthetic_by_emotion):
    """Rows {emotion, n_real, n_synthetic, mad, mad_real, mad_nearest} (see the module docstring).

    Inputs: dict emotion -> (n, F, T) arrays. Emotions without synthetic segments are skipped;
    a synthetic emotion without real segments is an error (no reference).
    """
    rows, pooled = [], {"syn": [], "real": [], "near": []}
    for emo in sorted(synthetic_by_emotion):
        syn = np.asarray(synthetic_by_emotion[emo])
        if emo not in real_by_emotion or len(real_by_emotion[emo]) == 0:
            raise SerError(f"no real segments of emotion '{emo}' to compare the synthetic ones with")
        real = np.asarray(real_by_emotion[emo])
        if syn.shape[1:] != real.shape[1:]:
            raise SerError(f"emotion '{emo}': synthetic segments {syn.shape[1:]} and real {real.shape[1:]} differ")
        mean = real.astype(np.float64).mean(axis=0)
        per_syn = np.abs(syn - mean[None]).mean(axis=(1, 2))
        per_real = np.abs(real - mean[None]).mean(axis=(1, 2))
        near = mad_nearest(syn, real)
        rows.append({"emotion": emo, "n_real": int(len(real)), "n_synthetic": int(len(syn)),
                     "mad": float(per_syn.mean()), "mad_real": float(per_real.mean()), "mad_nearest": near})
        pooled["syn"].append(per_syn)
        pooled["real"].append(per_real)
        pooled["near"].append((near, len(syn)))
    if rows:
        n_syn = sum(n for _, n in pooled["near"])
        rows.append({"emotion": "all", "n_real": sum(r["n_real"] for r in rows), "n_synthetic": n_syn,
                     "mad": float(np.concatenate(pooled["syn"]).mean()),
                     "mad_real": float(np.concatenate(pooled["real"]).mean()),
                     "mad_nearest": float(sum(v * n for v, n in pooled["near"]) / n_syn)})
    return rows


def mel_grid_png(path, real_by_emotion, synthetic_by_emotion, per_emotion=2, title=None):
    """PNG: one row per emotion, `per_emotion` real then `per_emotion` synthetic segments."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ser.data.atomic import atomic_save_png

    emotions = [e for e in sorted(synthetic_by_emotion) if len(real_by_emotion.get(e, ())) > 0]
    if not emotions:
        raise SerError("no emotion has both real and synthetic segments to plot")
    cols = 2 * per_emotion
    fig, axes = plt.subplots(len(emotions), cols, figsize=(2.6 * cols, 1.9 * len(emotions)), squeeze=False)
    image = None
    for r, emo in enumerate(emotions):
        panels = [("real", x) for x in real_by_emotion[emo][:per_emotion]]
        panels += [("synthetic", x) for x in synthetic_by_emotion[emo][:per_emotion]]
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(panels):
                kind, seg = panels[c]
                image = ax.imshow(seg, origin="lower", aspect="auto", vmin=-1, vmax=1, cmap="magma",
                                  interpolation="nearest")
                if r == 0:
                    ax.set_title(kind, fontsize=9)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(emo, fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="scaled log mel")
    if title:
        fig.suptitle(title, fontsize=10)
    atomic_save_png(path, fig, dpi=80)
    plt.close(fig)


def griffin_lim(segment, feat_conf, n_iter=32):
    """Waveform (float32 numpy) of a scaled mel segment (n_mels, frames) via Griffin-Lim.

    The [-1, 1] scaling is inverted (ser.features.mel_to_log, then exp: mel magnitudes),
    torchaudio's InverseMelScale recovers a linear magnitude spectrogram with the filterbank of the
    feature config (Slaney scale/normalisation by default), GriffinLim (power 1: magnitudes)
    estimates the phase. For listening only: a vocoder (HiFi-GAN) sounds far better.
    """
    import torch
    import torchaudio.transforms as T

    from ser.features.mel import DEFAULT_SCALE_MAX_MEL, DEFAULT_SCALE_MIN_MEL, mel_to_log

    c = {"sample_rate": 22050, "n_fft": 1024, "win_length": 1024, "hop_length": 256, "num_mels": 80,
         "f_min": 0.0, "f_max": 8000.0, "mel_scale": "slaney", "mel_norm": "slaney",
         "scale_min_mel": DEFAULT_SCALE_MIN_MEL, "scale_max_mel": DEFAULT_SCALE_MAX_MEL, **(feat_conf or {})}
    seg = torch.as_tensor(np.asarray(segment, dtype=np.float32))
    if seg.shape[0] != c["num_mels"]:
        raise SerError(f"griffin_lim: segment has {seg.shape[0]} bands, the feature config {c['num_mels']}")
    mel = torch.exp(mel_to_log(seg.double(), c["scale_min_mel"], c["scale_max_mel"])).float()
    inv = T.InverseMelScale(n_stft=c["n_fft"] // 2 + 1, n_mels=c["num_mels"], sample_rate=c["sample_rate"],
                            f_min=float(c["f_min"]), f_max=float(c["f_max"]),
                            norm=None if c["mel_norm"] == "none" else "slaney", mel_scale=c["mel_scale"])
    linear = inv(mel)                                            # (n_freq, frames)
    gl = T.GriffinLim(n_fft=c["n_fft"], n_iter=n_iter, win_length=c["win_length"], hop_length=c["hop_length"],
                      power=1.0, rand_init=False)         # zero initial phase: deterministic
    wave = gl(linear.clamp(min=0.0)).numpy().astype(np.float32)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > 0 and math.isfinite(peak):
        wave = wave * (0.9 / peak)
    return wave, int(c["sample_rate"])
