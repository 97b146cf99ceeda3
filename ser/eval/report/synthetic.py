"""'## Synthetic data (paper 2)': how the diffusion models were trained and sampled, the
classifiers trained on real and synthetic data (its Table 2 layout), MAD per emotion (its Table 1)
and a real-vs-synthetic mel grid (its Figure 2).

Reads what the recipe leaves in an experiment dir, per diffusion model tree
EXP/diffusion_<hash>/fold.<k>/ (one model per fold, trained on the fold's training speakers):
config.yaml (the resolved diffusion config), history.tsv (step, ..., steps_per_s), `done`, and per
sample set <syn> = syn_s<S>_n<N>: synthetic.yaml (sampling steps, segments per combination),
utt2spk, report/mad.json (ser.bin.diffusion_report) and report/mel_grid.png; generation times are
the sampling time synthetic.yaml records, else the wall time of the sampling job's log
EXP/diffusion_<hash>/log/generate_<syn>.<k>.log ("# Accounting: time=...") unless that job only
found its samples complete.
"""
import glob
import json
import os
import re

import numpy as np
import yaml

from ser.augment.settings import TRAINING_DATA as TABLE2_SETTINGS, key_of, training_data_label
from ser.data.atomic import atomic_copy
from ser.data.synthetic_set import read_info
from ser.eval.aggregate import FOLD_RE, sorted_subdirs
from ser.eval.conditions import CLEAN_DIR
from ser.eval.config_diff import config_differences, describe_values
from ser.eval.paired import paired_difference, paired_text
from ser.eval.report.markdown import hms, mean_std_text, pm, rel, table
from ser.runtime.config import read_yaml

ACCOUNTING_RE = re.compile(r"^# Accounting: time=(\d+)", re.M)


def _fold_number(path):
    return int(re.search(r"fold\.(\d+)$", path).group(1))


def read_history(history_path):
    """(last step, seconds spent in training steps) of a history.tsv: the time is the sum over rows
    of (steps since the previous row) / steps_per_s."""
    total, last = 0.0, 0
    with open(history_path) as f:
        header = f.readline().rstrip("\n").split("\t")
        i_step, i_rate = header.index("step"), header.index("steps_per_s")
        for line in f:
            cells = line.rstrip("\n").split("\t")
            step, rate = int(cells[i_step]), float(cells[i_rate])
            if rate > 0:
                total += (step - last) / rate
            last = step
    return last, total


def generation_seconds(info, log_path):
    """Seconds a sample set took to generate: synthetic.yaml's `sampling_seconds`, else the wall
    time utils/run.py wrote into the sampling job's log; None when neither says (a later run that
    skipped the complete samples rewrites the log with its own few seconds)."""
    if info.get("sampling_seconds") is not None:
        return float(info["sampling_seconds"])
    try:
        with open(log_path) as f:
            log = f.read()
    except OSError:
        return None
    m = ACCOUNTING_RE.findall(log)
    return int(m[-1]) if m and "already generated" not in log else None


def collect(exp_dir):
    """[{dir, folds: {k: {config, steps, seconds}}, samples: {syn: {k: {...}}}}] per diffusion tree."""
    trees = []
    for ddir in sorted(d for d in glob.glob(os.path.join(exp_dir, "diffusion_*")) if os.path.isdir(d)):
        folds, samples, unfinished, shared = {}, {}, [], {}
        # run.sh trains one model per distinct training set: job i of the logs is fold train_folds[i]
        # and the other folds' dirs are links (fold.2 -> fold.1)
        job_of = {}
        if os.path.exists(os.path.join(ddir, "train_folds")):
            with open(os.path.join(ddir, "train_folds")) as f:
                job_of = {int(k): i for i, k in enumerate(f.read().split(), start=1)}
        # fold.<k> dirs only (not e.g. a fold.1.log), in fold order
        for name, m in sorted(sorted_subdirs(ddir, FOLD_RE), key=lambda d: int(d[1].group(1))):
            fdir, k = os.path.join(ddir, name), int(m.group(1))
            if os.path.islink(fdir):
                shared[k] = _fold_number(os.readlink(fdir).rstrip("/"))
                continue
            if not (os.path.exists(os.path.join(fdir, "done")) and os.path.exists(os.path.join(fdir, "history.tsv"))):
                unfinished.append(k)
                continue
            config = read_yaml(os.path.join(fdir, "config.yaml"))
            steps, seconds = read_history(os.path.join(fdir, "history.tsv"))
            folds[k] = {"config": config, "steps": steps, "seconds": seconds}
            for mad_path in glob.glob(os.path.join(fdir, "syn_*", "report", "mad.json")):
                sdir = os.path.dirname(os.path.dirname(mad_path))
                syn = os.path.basename(sdir)
                with open(mad_path) as f:
                    mad = json.load(f)
                info = read_info(sdir)
                with open(os.path.join(sdir, "utt2spk")) as f:
                    n_utts = sum(1 for line in f if line.strip())
                samples.setdefault(syn, {})[k] = {
                    "rows": {r["emotion"]: r for r in mad["rows"]}, "info": info, "n_utts": n_utts,
                    "grid": os.path.join(sdir, "report", "mel_grid.png"),
                    "audio": sorted(glob.glob(os.path.join(sdir, "report", "audio", "*.wav"))),
                    "seconds": generation_seconds(
                        info, os.path.join(ddir, "log", f"generate_{syn}.{job_of.get(k, k)}.log"))}
        if folds:
            trees.append({"dir": ddir, "folds": folds, "samples": samples, "unfinished": unfinished,
                          "shared": shared})
    return trees


def describe_diffusion(config):
    """One line on a diffusion config: process, denoiser, conditioner and optimisation."""
    proc, den, cond = config.get("process", {}), config.get("denoiser", {}), config.get("conditioner", {})
    # imported here: ser.diffusion pulls in torch, which a report without diffusion models never needs
    from ser.diffusion.denoiser import PRESETS

    preset = den.get("preset", "cpu")
    channels = den.get("channels", PRESETS.get(preset, {}).get("channels", "?"))   # a preset's own width
    denoiser = f"{preset} preset, {channels} filters"
    return (f"T = {proc.get('steps', '?')} ({proc.get('schedule', '?')} schedule, learned variance, "
            f"λ_vlb = {proc.get('vlb_weight', '?')}); denoiser {denoiser}; conditioner {cond.get('type', '?')}; "
            f"batch {config.get('batch_size', '?')}, lr {config.get('optim', {}).get('lr', '?')}, "
            f"max steps {config.get('max_steps', '?')}" +
            (f"; autoguidance guide: the EMA weights of step {config['guidance']['snapshot_step']}"
             if config.get("guidance", {}).get("snapshot_step", 0) else ""))


# Paper 2's training-data settings (Table 2 rows): aug_key -> label, in table order.
TRAINING_DATA = {key_of(n): training_data_label(n) for n in TABLE2_SETTINGS}


def real_reference(tag, real_tags, corpus, descs):
    """The real-data run a Table 2 row is compared with: of REAL_TAGS, the one whose training config
    differs from the row's in the fewest keys (so a bf16 row meets the bf16 real run); ties: the
    first. None without real runs."""
    def distance(real_tag):
        configs = [descs[(corpus, t)].get("config") for t in (tag, real_tag)]
        return len(config_differences(configs))
    return min(real_tags, key=lambda t: (distance(t), real_tags.index(t))) if real_tags else None


def training_data_table(corpus, summaries, descs, digits=1):
    """Paper 2's Table 2 layout for one corpus: for every (model, features) trained on synthetic
    data, one row per training-data setting (real, synthetic, real + synthetic, + mixup) and tag,
    and a UAR and a WA column per test condition. Tags of one setting (e.g. samples of diffusion
    models trained for different numbers of steps) are told apart by the config keys they differ
    in. [] when no model of the corpus used synthetic data."""
    by_model = {}     # (model, features) -> aug_key or selection setting -> tag -> condition -> Summary
    for s in summaries:
        d = descs[(s.corpus, s.tag)]
        if s.corpus == corpus and d["aug_key"] in TRAINING_DATA:
            # a per-fold selection (tag.yaml `setting`) is a row of its own, never the real-data row
            key = d["setting"] if d.get("setting") else d["aug_key"]
            by_model.setdefault((d["model"], d["features"]), {}).setdefault(key, {}) \
                .setdefault(s.tag, {})[s.condition] = s
    models = sorted(m for m, augs in by_model.items() if set(augs) & set(TRAINING_DATA) - {"none"})
    if not models:
        return []
    conditions = sorted({c for m in models for tags in by_model[m].values() for cells in tags.values()
                         for c in cells}, key=lambda c: (c != CLEAN_DIR, c))
    rows = []
    for model, feat in models:
        real = by_model[(model, feat)].get("none", {})
        selections = sorted(k for k in by_model[(model, feat)] if k not in TRAINING_DATA)
        for aug, label in list(TRAINING_DATA.items()) + [(k, k) for k in selections]:
            tags = sorted(by_model[(model, feat)].get(aug, {}))
            diffs = config_differences([descs[(corpus, t)].get("config") for t in tags])
            for i, tag in enumerate(tags):
                cells = by_model[(model, feat)][aug][tag]
                row = [f"{model} ({feat})", f"{label} ({describe_values(diffs, i)})" if diffs else label, f"`{tag}`"]
                for c in conditions:
                    s = cells.get(c)
                    row += [pm(s.uar_mean, s.uar_std, digits), pm(s.wa_mean, s.wa_std, digits)] if s else ["–", "–"]
                clean = cells.get(CLEAN_DIR)
                ref = real_reference(tag, sorted(real), corpus, descs)
                real_clean = real[ref].get(CLEAN_DIR) if ref else None
                row.append(paired_text(paired_difference(clean.fold_uar, real_clean.fold_uar), digits=digits)
                           if clean and real_clean and clean is not real_clean else "–")
                rows.append(row)
    header = (["Model", "training data", "tag"] + [f"{m} {c}" for c in conditions for m in ("UAR", "WA")] +
              [f"UAR {CLEAN_DIR} − real, paired"])
    return (["Classifiers trained on real, synthetic and real + synthetic data (paper 2, Table 2 layout), "
             f"%, mean ± std as in the UAR table; the last column is the {CLEAN_DIR} UAR minus that of the "
             "model trained on real data (of several, the one with the closest training config, e.g. the "
             "same precision), per fold (test speaker), as mean ± standard error over the "
             "folds both scored and the number of folds it is better in:", ""] + table(header, rows) + [""])


AUDIO_RE = re.compile(r"^(.+)_(real|synthetic)_(\d+)\.wav$")


def audio_links(wavs, dest, out_dir, where):
    """Copy the Griffin-Lim WAVs of a report (audio/<emotion>_{real,synthetic}_<k>.wav) into `dest`
    and return markdown lines linking them per emotion ([] without WAVs)."""
    by_emotion = {}
    for wav in wavs:
        m = AUDIO_RE.match(os.path.basename(wav))
        if m:
            by_emotion.setdefault(m.group(1), {}).setdefault(m.group(2), []).append((int(m.group(3)), wav))
    if not by_emotion:
        return []
    os.makedirs(dest, exist_ok=True)
    L = ["", f"Listen (Griffin-Lim reconstructions of the mel segments, {where}; a vocoder such as "
             "HiFi-GAN, as in the paper, sounds far better):", ""]
    for emo in sorted(by_emotion):
        parts = []
        for kind in ("real", "synthetic"):
            links = []
            for k, wav in sorted(by_emotion[emo].get(kind, [])):
                target = os.path.join(dest, os.path.basename(wav))
                atomic_copy(wav, target)
                links.append(f"[{k}]({rel(target, out_dir)})")
            if links:
                parts.append(f"{kind} {' '.join(links)}")
        L.append(f"- {emo}: " + "; ".join(parts))
    return L


def harmonicity_lines(syn, per_fold, emotions):
    """The harmonicity table of a sample set (reports made before it existed have none: [])."""
    rows = []
    for emo in emotions:
        cells = [p["rows"][emo] for p in per_fold.values() if "harmonicity" in p["rows"].get(emo, {})]
        if cells:
            share = [(c["harmonicity"] - c["harmonicity_noise"]) / (c["harmonicity_real"] - c["harmonicity_noise"])
                     for c in cells if c["harmonicity_real"] > c["harmonicity_noise"]]
            rows.append([emo] + [mean_std_text([c[k] for c in cells], digits=3)
                                 for k in ("harmonicity", "harmonicity_real", "harmonicity_noise")] +
                        [mean_std_text(share, digits=2) if share else "–"])
    if not rows:
        return []
    return ["", f"Harmonicity per emotion, `{syn}`, mean ± std over the models: the pitch-harmonic "
                "ripple of the mel bands below 1 kHz (peak autocorrelation over the lags of F0 = 80-400 Hz "
                "of the bands minus their envelope, mean over non-silent frames; definition: "
                "ser/diffusion/quality.py). `noise` is the score of white noise, the floor; `share` is "
                "(synthetic − noise) / (real − noise) per model: 0 means no harmonic structure beyond "
                "noise, 1 as much as real speech.", ""] + \
        table(["Emotion", "synthetic", "real", "noise", "share"], rows)


def synthetic_section(exp_dirs, out_path, fig_dir=None, summaries=(), descs=None):
    """Markdown lines of '## Synthetic data (paper 2)' for every corpus -> exp dir with diffusion
    models (none without): the training-data table of the classifiers (from `summaries`/`descs`,
    as in ser.bin.report), the diffusion settings and times, MAD per emotion; copies fold 1's (or
    the first fold's) mel grid next to the report (or into fig_dir) as mel_grid_<corpus>_<syn>.png
    (mel_grid_<corpus>_<diffusion dir>_<syn>.png where a corpus has several diffusion trees) and
    links it."""
    out_dir = os.path.dirname(os.path.abspath(out_path))
    found = [(c, t) for c, exp in exp_dirs.items() for t in collect(exp)]
    if not found:
        return []
    L = ["## Synthetic data (paper 2)", "",
         "One diffusion model per fold (folds with the same training speakers share it), trained on "
         "that fold's training speakers only (their mel "
         "segments, conditioned on text, emotion and speaker); its samples are conditioned on the same "
         "training speakers' (text, emotion) combinations, so no test or validation speaker is generated. "
         "Training time: the time spent in training steps (history.tsv), summed over the models (it "
         "includes time the jobs waited for the CPU); generation: the sampling time (synthetic.yaml, "
         "else the sampling job's log; not shown when neither recorded it).", ""]
    trees_of = {}
    for corpus, tree in found:
        trees_of.setdefault(corpus, []).append(tree)
    for corpus, tree in found:
        several = len(trees_of[corpus]) > 1
        if tree is trees_of[corpus][0]:
            L += [f"### {corpus}", ""]
            if descs is not None:
                L += training_data_table(corpus, summaries, descs)
        folds = tree["folds"]
        # the folds' configs differ only in their data paths (data.fold_dir), unless edited between runs
        configs = {yaml.safe_dump({k: v for k, v in f["config"].items() if k != "data"}, sort_keys=True)
                   for f in folds.values()}
        first = folds[min(folds)]["config"]
        tree_name = os.path.basename(tree["dir"])
        L += [f"#### Diffusion models `{tree_name}`", ""]
        # figures of a corpus's second diffusion tree must not overwrite the first's
        fig_key = corpus.replace("/", "_") + (f"_{tree_name}" if several else "")
        L.append(f"- Diffusion model: {describe_diffusion(first)}" +
                 ("" if len(configs) == 1 else " (folds differ in their configs: see each fold's config.yaml)") + ".")
        steps = sorted({f["steps"] for f in folds.values()})
        secs = [f["seconds"] for f in folds.values()]
        L.append(f"- Trained: {len(folds)} models (fold {', '.join(str(k) for k in sorted(folds))}), "
                 f"{' / '.join(str(s) for s in steps)} training steps each; training time "
                 f"{hms(sum(secs))} in all, {hms(np.mean(secs))} per model" +
                 (f"; not finished (left out): fold {', '.join(str(k) for k in tree['unfinished'])}"
                  if tree["unfinished"] else "") + ".")
        if tree["shared"]:
            L.append("- Shared: " + ", ".join(f"fold {k} uses fold {j}'s model and samples"
                                              for k, j in sorted(tree["shared"].items())) +
                     " (the same training speakers: paired folds swap test and validation speaker); "
                     "the statistics below count each model once.")
        for syn, per_fold in sorted(tree["samples"].items()):
            info = per_fold[min(per_fold)]["info"]
            gen = [p["seconds"] for p in per_fold.values() if p["seconds"] is not None]
            n_utts = [p["n_utts"] for p in per_fold.values()]
            how = ("DDIM, η = " + str(info.get("eta", 0.0)) if info.get("sampler") == "ddim"
                   else "ancestral, learned variance")
            if info["guidance_weight"] != 1.0:
                how += f"; autoguidance w = {info['guidance_weight']:g}"
            L.append(f"- Samples `{syn}`: S = {info.get('sampling_steps')} strided sampling steps ({how}), "
                     f"N = {info.get('num_per_combination')} per (text, emotion, speaker) combination, "
                     f"{int(np.mean(n_utts))} synthetic utterances per model (mean) over {len(per_fold)} models" +
                     (f"; generation {hms(sum(gen))} in all, {hms(np.mean(gen))} per model"
                      + (f" ({len(gen)} of {len(per_fold)} models recorded it)" if len(gen) < len(per_fold) else "")
                      if gen else "; generation time not recorded") + ".")
        for syn, per_fold in sorted(tree["samples"].items()):
            emotions = list(dict.fromkeys(e for p in per_fold.values() for e in p["rows"]))
            emotions = sorted(e for e in emotions if e != "all") + (["all"] if "all" in emotions else [])
            rows = []
            for emo in emotions:
                cells = [p["rows"][emo] for p in per_fold.values() if emo in p["rows"]]
                rows.append([emo, int(round(np.mean([c["n_real"] for c in cells]))),
                             int(round(np.mean([c["n_synthetic"] for c in cells])))] +
                            [mean_std_text([c[key] for c in cells]) for key in ("mad", "mad_real")] +
                            [mean_std_text([c["mad"] / c["mad_real"] for c in cells if c["mad_real"] > 0], digits=2),
                             mean_std_text([c["mad_nearest"] for c in cells])])
            L += ["", f"MAD per emotion (paper 2, Table 1), `{syn}`, mean ± std over {len(per_fold)} models, "
                      "in scaled-mel units ([-1, 1]): `MAD synthetic` is the mean |synthetic − M_e| with M_e the "
                      "emotion's mean real training segment; `MAD real` the same for the real segments (their "
                      "natural spread); `ratio` is MAD synthetic / MAD real per model (1: as varied around "
                      "the emotion's mean as real data; noise is far above); `MAD nearest` the distance of a "
                      "synthetic segment to its nearest real one (near 0 would mean copies). Definitions: "
                      "ser/diffusion/quality.py.", ""]
            L += table(["Emotion", "real segments (per fold)", "synthetic segments (per fold)",
                         "MAD synthetic", "MAD real", "ratio", "MAD nearest"], rows)
            L += harmonicity_lines(syn, per_fold, emotions)
            k = 1 if 1 in per_fold else min(per_fold)
            grid = per_fold[k]["grid"]
            dest_dir = fig_dir if fig_dir else out_dir
            if os.path.exists(grid):
                dest = os.path.join(dest_dir, f"mel_grid_{fig_key}_{syn}.png")
                atomic_copy(grid, dest)
                link = rel(dest, out_dir)
                L += ["", f"Real (left) and synthetic (right) mel segments per emotion, fold {k} "
                          f"(paper 2, Figure 2 layout): [{os.path.basename(dest)}]({link})", "",
                      f"![real vs synthetic mel segments, {corpus}, fold {k}]({link})"]
            L += audio_links(per_fold[k]["audio"], os.path.join(dest_dir, f"audio_{fig_key}_{syn}"),
                             out_dir, f"fold {k}")
        L.append("")
    return L
