"""Render aggregated results (ser.eval.aggregate) as a RESULTS.md report.

The main table has the layout of paper 1's Table 1: one row per model (experiment tag), one
column per corpus x test condition, cells "UAR mean ± std" in percent. Further sections: the
environment (python, torch, device, threads, precision, links to the configs), WA in
the same layout, the models (features, augmentation, epochs, runs, training time), per-fold
UAR/WA with the test speaker, per-class recall, and links to the confusion matrices.
When noisy (test_snrN) or adversarial (test_fgsm, test_bim) conditions were scored, sections in
the layout of paper 1's Table 2 (augmentation blocks x SNR rows x model columns) and Table 3
(augmentation blocks x clean/FGSM/BIM rows x model columns) follow; grouped UAR bar charts in
the layout of its Figure 2 (write_uar_bar_charts, ser.eval.bar_chart) are linked when given.
"""
import math
import os
import platform
import re
import subprocess
from datetime import datetime

from ser.eval.aggregate import AUG_NAMES, AUG_ORDER, DDOF, run_config, train_time
from ser.eval.bar_chart import save_bar_chart_png
from ser.eval.confusion_plot import save_confusion_png

# Row order of paper 1's tables; other models follow alphabetically.
MODEL_ORDER = ["cnn", "cnn_lstm", "densenet", "densenet_lstm", "densenet_lstm_highway", "cnn_blstm"]


def git_revision(path):
    """`git rev-parse --short HEAD` of the repository holding `path`, or 'unknown'."""
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and rev else "unknown"


def pct(x, digits=1):
    """0.6412 -> '64.1'; nan/None -> '–'."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def pm(mean, std, digits=1):
    """'64.1 ± 1.3' (percent); the ± part is left out when std is undefined (a single value)."""
    if std is None or math.isnan(std):
        return pct(mean, digits)
    return f"{pct(mean, digits)} ± {pct(std, digits)}"


def hms(seconds):
    """Seconds as '1h02m', '3m05s' or '12s' ('–' if unknown)."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def _condition_key(cond):
    return condition_order(cond)


def _model_key(desc):
    m, a = str(desc.get("model")), desc.get("aug_key")
    return (MODEL_ORDER.index(m) if m in MODEL_ORDER else len(MODEL_ORDER), m,
            AUG_ORDER.index(a) if a in AUG_ORDER else len(AUG_ORDER), str(desc.get("augmentation")), desc["name"])


def plain_label(d):
    """'model (features[, augmentation])' of a tag description."""
    extra = [str(d.get("features"))] + ([str(d["augmentation"])] if d.get("augmentation") not in (None, "none") else [])
    return f"{d.get('model')} ({', '.join(extra)})"


def row_labels(descs):
    """tag -> display label 'model (features, augmentation)', the tag added where labels repeat."""
    labels = {tag: plain_label(d) for tag, d in descs.items()}
    counts = {}
    for lab in labels.values():
        counts[lab] = counts.get(lab, 0) + 1
    return {tag: (lab if counts[lab] == 1 else f"{lab} `{tag}`") for tag, lab in labels.items()}


def table1_rows(tags, descs, labels, columns, by_key):
    """[(label, [tags])]: one row per model setting as in paper 1's Table 1. Tags of the same
    setting on different corpora (their config hashes differ with the data) share a row; tags
    that would fill the same cell keep rows of their own, labelled with the tag."""
    groups = {}
    for t in tags:
        groups.setdefault(plain_label(descs[t]), []).append(t)
    rows = []
    for label, ts in groups.items():
        used = [{col for col in columns if (col[0], t, col[1]) in by_key} for t in ts]
        if len(ts) > 1 and sum(map(len, used)) == len(set().union(*used)):
            rows.append((label, ts))
        else:
            rows += [(labels[t], [t]) for t in ts]
    return rows


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def _rel(path, start):
    return os.path.relpath(os.path.abspath(path), os.path.abspath(start)).replace(os.sep, "/")


def confusion_png_path(summary, exp_dir, fig_dir=None):
    """Where the aggregated confusion matrix of a summary goes."""
    if fig_dir:
        return os.path.join(fig_dir, f"{summary.corpus}_{summary.tag}_{summary.condition}_confusion.png")
    return os.path.join(exp_dir, summary.tag, f"confusion_{summary.condition}.png")


def write_aggregated_confusions(summaries, exp_dirs, fig_dir=None):
    """Write one PNG per summary (confusion summed over its folds and seeds); key -> path."""
    paths = {}
    for s in summaries:
        path = confusion_png_path(s, exp_dirs[s.corpus], fig_dir)
        title = (f"{s.tag} {s.condition}: sum over {len(s.folds)} folds x {len(s.seed_uar)} seed(s)\n"
                 f"UAR {pm(s.uar_mean, s.uar_std)} %")
        save_confusion_png(path, s.confusion, s.classes, title)
        paths[(s.corpus, s.tag, s.condition)] = path
    return paths


def render(summaries, descs, out_path, title="Results", corpus_notes=None, protocol_note=None, folds_note=None,
           confusion_paths=None, date=None, revision=None, digits=1, bar_charts=None):
    """Markdown text of the report. descs: (corpus, tag) -> description dict (aggregate.tag_config);
    bar_charts: (corpus, condition) -> PNG path (write_uar_bar_charts), linked when given."""
    corpus_notes = corpus_notes or {}
    confusion_paths = confusion_paths or {}
    out_dir = os.path.dirname(os.path.abspath(out_path))
    date = date or datetime.now().strftime("%Y-%m-%d %H:%M")
    revision = revision or git_revision(out_dir)
    by_key = {(s.corpus, s.tag, s.condition): s for s in summaries}
    corpora = list(dict.fromkeys(s.corpus for s in summaries))
    columns = [(c, cond) for c in corpora
               for cond in sorted({s.condition for s in summaries if s.corpus == c}, key=_condition_key)]
    tags = list(dict.fromkeys(s.tag for s in summaries))
    tag_desc = {}
    for s in summaries:
        tag_desc.setdefault(s.tag, descs[(s.corpus, s.tag)])
    tags.sort(key=lambda t: _model_key(tag_desc[t]))
    labels = row_labels(tag_desc)
    modes = {s.mode for s in summaries}
    mixed = len(modes) > 1
    partial = any(not s.complete for s in summaries)

    def cell(s, mean, std):
        if s is None:
            return "–"
        text = pm(mean, std, digits)
        if mixed and s.mode == "folds":
            text += " †"
        if not s.complete:
            text += " *"
        if s.missing_folds:  # reported with --allow-partial only: say so in the cell itself
            text += f" (partial: {len(s.folds)} of {len(s.folds) + len(s.missing_folds)} folds)"
        return text

    L = [f"# {title}", ""]
    L.append(f"Generated {date} from commit `{revision}` by `python -m ser.bin.report`.")
    L.append("")
    # --- protocol ---------------------------------------------------------------------------------
    L += ["## Protocol", ""]
    for c in corpora:
        cs = [s for s in summaries if s.corpus == c]
        folds = sorted({f for s in cs for f in s.folds})
        seeds = sorted({x for s in cs for x in s.seed_uar})
        note = corpus_notes.get(c)
        protocol = (folds_note or f"Leave-one-speaker-out, {len(folds)} folds (each tests on one "
                                  f"speaker, another speaker validates, the rest train)").rstrip(". ")
        L.append(f"- **{c}**" + (f": {note}" if note else "") + ". " + protocol +
                 f". Repeats (seeds): {len(seeds)} ({', '.join(str(x) for x in seeds)}).")
    excluded = []
    for s in summaries:
        for seed in s.excluded_seeds:
            have = sum(1 for r in s.all_runs if r.seed == seed)
            excluded.append(f"{labels[s.tag]} {s.corpus} {s.condition} seed {seed} ({have} of {len(s.folds)} folds)")
    if excluded:
        L.append("- Not counted (unfinished repeats): " + "; ".join(excluded) + ".")
    feats = sorted({str(d.get("features")) for d in tag_desc.values()})
    epochs = sorted({str(d.get("max_epochs")) for d in tag_desc.values() if d.get("max_epochs") is not None})
    L.append(f"- Features: {', '.join(feats)}. Max epochs: {', '.join(epochs) or '?'} "
             f"(early stopping and model selection on the validation set's UAR).")
    L.append("- UAR = unweighted average recall (mean of the per-class recalls, classes absent from a "
             "test speaker left out); WA = accuracy over utterances. Scores are utterance-level: "
             "the mean of the segment posteriors.")
    spread = {
        "seeds": "over repeats: each repeat's (seed's) value is the mean over its folds, and ± is the "
                 f"sample standard deviation (ddof={DDOF}) of these per-seed values",
        "folds": "over folds (a single repeat): ± is the sample standard deviation "
                 f"(ddof={DDOF}) of the per-fold values",
    }
    if not mixed:
        L.append(f"- mean ± std {spread[modes.pop()]}.")
    else:
        L.append(f"- mean ± std {spread['seeds']}; cells marked † have a single repeat: there ± is "
                 f"the sample standard deviation (ddof={DDOF}) over folds.")
    if partial:
        L.append("- * incomplete: no repeat of this model has finished every fold yet; the values "
                 "average the folds available.")
    if protocol_note:
        L.append(f"- {protocol_note}")
    L.append("")
    L += environment_section(summaries, out_dir)
    # --- Table 1 layout -------------------------------------------------------------------------
    header = ["Model"] + [f"{c} {cond}" for c, cond in columns]
    for name, key in (("UAR", "uar"), ("WA", "wa")):
        L += [f"## {name} (%)", ""]
        rows = []
        for label, ts in table1_rows(tags, tag_desc, labels, columns, by_key):
            row = [label]
            for c, cond in columns:
                s = next((by_key[(c, t, cond)] for t in ts if (c, t, cond) in by_key), None)
                row.append(cell(s, getattr(s, f"{key}_mean", None), getattr(s, f"{key}_std", None)))
            rows.append(row)
        L += _table(header, rows) + [""]
    # --- Table 2 / Table 3 / Figure 2 layouts (only when such conditions / charts exist) -----------
    L += noise_section(summaries, descs, lambda s: cell(s, s.uar_mean, s.uar_std))
    L += attack_section(summaries, descs, lambda s: cell(s, s.uar_mean, s.uar_std))
    L += bar_chart_section(bar_charts or {}, out_dir)
    # --- models -------------------------------------------------------------------------------------
    L += ["## Models", "", "Training time: sum of the per-epoch times in history.tsv over the runs "
          "(folds × seeds) behind the row; per run: their mean.", ""]
    rows = []
    for t in tags:
        d = tag_desc[t]
        for c in corpora:
            ss = [s for s in summaries if s.tag == t and s.corpus == c]
            if not ss:
                continue
            s = sorted(ss, key=lambda x: _condition_key(x.condition))[0]
            tt = train_time(s)
            ep = "–" if tt["mean_epochs"] is None else f"{tt['mean_epochs']:.1f}"
            rows.append([labels[t], f"`{t}`", c, d.get("features"), d.get("augmentation"),
                         d.get("max_epochs", "?"), ep,
                         f"{len(s.folds)} × {len(s.seed_uar)}",
                         f"{s.n} {s.mode}", hms(tt["total"]), hms(tt["per_run"])])
    L += _table(["Model", "tag", "corpus", "features", "augmentation", "max epochs", "epochs (mean)",
                 "folds × seeds", "± over", "train time", "per run"], rows) + [""]
    # --- per fold -----------------------------------------------------------------------------
    for c, cond in columns:
        ss = [by_key[(c, t, cond)] for t in tags if (c, t, cond) in by_key]
        folds = sorted({f for s in ss for f in s.folds})
        L += [f"## Per fold: {c} {cond}", "",
              "UAR / WA (%) of each fold's test speaker" +
              (", averaged over the repeats" if any(len(s.seed_uar) > 1 for s in ss) else "") + ".", ""]
        rows = []
        for f in folds:
            spk = next((", ".join(s.fold_speakers[f]) for s in ss if s.fold_speakers.get(f)), "?")
            row = [str(f), spk]
            for s in ss:
                row.append(f"{pct(s.fold_uar.get(f), digits)} / {pct(s.fold_wa.get(f), digits)}"
                           if f in s.fold_uar else "–")
            rows.append(row)
        rows.append(["mean", ""] + [f"{pct(_mean(s.fold_uar), digits)} / {pct(_mean(s.fold_wa), digits)}"
                                    for s in ss])
        L += _table(["Fold", "Test speaker"] + [labels[s.tag] for s in ss], rows) + [""]
    # --- per class ------------------------------------------------------------------------------
    for c, cond in columns:
        ss = [by_key[(c, t, cond)] for t in tags if (c, t, cond) in by_key]
        classes = ss[0].classes
        L += [f"## Per-class recall (%): {c} {cond}", "",
              "From the confusion matrix summed over all folds and repeats.", ""]
        rows = [[labels[s.tag]] + [pct(r, digits) for r in s.per_class_recall] for s in ss]
        L += _table(["Model"] + list(classes), rows) + [""]
    # --- confusion matrices -------------------------------------------------------------------
    L += ["## Confusion matrices", ""]
    for c, cond in columns:
        for t in tags:
            s = by_key.get((c, t, cond))
            if s is None:
                continue
            parts = []
            agg = confusion_paths.get((c, t, cond))
            if agg:
                parts.append(f"[all folds]({_rel(agg, out_dir)})")
            for r in sorted(s.runs, key=lambda r: (r.fold, r.seed)):
                png = os.path.join(r.path, "confusion.png")
                if os.path.exists(png):
                    name = f"{r.fold}" if len(s.seed_uar) == 1 else f"{r.fold}/s{r.seed}"
                    parts.append(f"[{name}]({_rel(png, out_dir)})")
            L.append(f"- {labels[t]}, {c} {cond}: " + " ".join(parts))
    L.append("")
    return "\n".join(L)


def _job_log(run):
    """The job log of a run's training (`<exp>/<tag>/log/train.seed<S>.<K>.log`), or ''."""
    path = os.path.join(run.exp, run.tag, "log", f"train.seed{run.seed}.{run.fold}.log")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4096)   # the command line is its first line
    except OSError:
        return ""


def _head(path, size=4096):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(size)
    except OSError:
        return ""


def _cpu_name():
    for line in _head("/proc/cpuinfo", 1 << 16).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def environment_section(summaries, out_dir):
    """'## Environment' lines: python and torch of this venv, and per run (from its train.log,
    config.yaml and job log) the device, torch threads and precision, and the configs used."""
    from importlib import metadata

    runs = list({r.run_dir: r for s in summaries for r in s.runs}.values())
    devices, threads, precisions, configs = {}, {}, {}, {}
    for r in runs:
        m = re.search(r"device ([^\s,]+)", _head(os.path.join(r.run_dir, "train.log")))
        dev = m.group(1) if m else "?"
        devices[dev] = devices.get(dev, 0) + 1
        cfg = run_config(r.run_dir) or {}
        prec = str(cfg.get("precision", "fp32"))
        precisions[prec] = precisions.get(prec, 0) + 1
        job = _job_log(r)
        m = re.search(r"--num-threads (\d+)", job)
        th = m.group(1) if m else "?"
        threads[th] = threads.get(th, 0) + 1
        m = re.search(r"--config (\S+)", job)
        if m:
            recipe = os.path.dirname(os.path.dirname(os.path.abspath(r.exp)))  # exp/<dset> -> recipe
            configs.setdefault(r.tag, os.path.join(recipe, m.group(1)))
    try:
        torch_version = metadata.version("torch")   # no torch import: the report stays fast
    except metadata.PackageNotFoundError:
        torch_version = "?"

    def counted(d):
        return ", ".join(f"{k} ({n} runs)" if len(d) > 1 else k for k, n in sorted(d.items()))
    L = ["## Environment", "",
         f"- Software: python {platform.python_version()}, torch {torch_version} (the venv that "
         f"generated this report); {platform.system()} on {_cpu_name()}, {os.cpu_count()} CPUs.",
         f"- Training runs ({len(runs)}): device {counted(devices)}; torch threads per job "
         f"{counted(threads)}; precision {counted(precisions)}."]
    if configs:
        L.append("- Configs: " + "; ".join(
            f"`{t}`: " + (f"[{_rel(p, out_dir)}]({_rel(p, out_dir)})" if os.path.exists(p) else f"`{p}` (gone)")
            for t, p in sorted(configs.items())) + ".")
    return L + [""]


def _mean(d):
    return sum(d.values()) / len(d) if d else math.nan


# --- paper 1, Tables 2 and 3 and Figure 2 -------------------------------------------------------
SNR_RE = re.compile(r"^test_snr(-?\d+(?:\.\d+)?)$")
ATTACK_RE = re.compile(r"^test_(fgsm|bim)(?:_.+)?$")
CLEAN = "test_clean"


def is_noise(condition):
    return SNR_RE.match(condition) is not None


def is_attack(condition):
    return ATTACK_RE.match(condition) is not None


def condition_order(condition):
    """Sort key: clean, the SNRs from low to high, FGSM, BIM, anything else by name."""
    m = SNR_RE.match(condition)
    if condition == CLEAN:
        return (0, 0.0, condition)
    if m:
        return (1, float(m.group(1)), condition)
    a = ATTACK_RE.match(condition)
    if a:
        return (2, ["fgsm", "bim"].index(a.group(1)), condition)
    return (3, 0.0, condition)


def _aug_order(aug):
    return (AUG_ORDER.index(aug) if aug in AUG_ORDER else len(AUG_ORDER), aug)


def aug_name(aug):
    return AUG_NAMES.get(aug, aug)


def model_grid(summaries, descs, corpus):
    """The models x augmentations view of one corpus, as paper 1's Tables 2-3 and Figure 2 use it.

    Returns (columns, augs, cells): columns = model names in paper order (with the features added
    when the corpus has runs on several feature types), augs = the augmentation keys present in
    AUG_ORDER, cells = (aug, column, condition) -> list of summaries (more than one only when
    several tags share model, features and augmentation, e.g. after a config change)."""
    ss = [s for s in summaries if s.corpus == corpus]
    d = {s.tag: descs[(corpus, s.tag)] for s in ss}
    feats = {str(x.get("features")) for x in d.values()}
    column, colkey = {}, {}
    for t, x in d.items():
        column[t] = str(x.get("model")) + (f" ({x.get('features')})" if len(feats) > 1 else "")
        colkey[column[t]] = _model_key(dict(x, augmentation="none", name=""))[:2] + (str(x.get("features")),)
    columns = sorted(set(column.values()), key=lambda c: colkey[c])
    augs = sorted({str(x.get("aug_key") or "none") for x in d.values()}, key=_aug_order)
    cells = {}
    for s in ss:
        aug = str(d[s.tag].get("aug_key") or "none")
        cells.setdefault((aug, column[s.tag], s.condition), []).append(s)
    return columns, augs, cells


def _grid_cell(found, cell_fn):
    if not found:
        return "–"
    if len(found) == 1:
        return cell_fn(found[0])
    return "; ".join(f"{cell_fn(s)} (`{s.tag}`)" for s in found)


def _corpora_with(summaries, pred):
    return list(dict.fromkeys(s.corpus for s in summaries if pred(s.condition)))


def noise_section(summaries, descs, cell_fn):
    """'## Noise (paper 1, Table 2 layout)' lines (none without test_snrN conditions): per corpus
    one table, a block of SNR rows per augmentation, one column per model, cells UAR mean ± std."""
    corpora = _corpora_with(summaries, is_noise)
    if not corpora:
        return []
    L = ["## Noise (paper 1, Table 2 layout)", "",
         "UAR (%), mean ± std as in the UAR table, of the models trained on clean data and tested on "
         "the test speakers' utterances with added noise at each SNR (mismatched condition, paper 1 "
         "sec. 5.2); one block per augmentation, one row per SNR, one column per model.", ""]
    for c in corpora:
        columns, augs, cells = model_grid(summaries, descs, c)
        snrs = sorted({s.condition for s in summaries if s.corpus == c and is_noise(s.condition)},
                      key=condition_order)
        rows = []
        for aug in augs:
            if not any((aug, col, cond) in cells for col in columns for cond in snrs):
                continue
            rows.append([f"**{aug_name(aug)}**"] + [""] * len(columns))
            for cond in snrs:
                rows.append([SNR_RE.match(cond).group(1)] +
                            [_grid_cell(cells.get((aug, col, cond)), cell_fn) for col in columns])
        L += [f"### {c}", ""] + _table(["SNR (dB)"] + columns, rows) + [""]
    return L


def _attack_params(summary):
    """Distinct (attack, eps, alpha, steps) of the runs behind a summary (from metrics.json)."""
    out = set()
    for r in summary.runs:
        m = r.metrics
        out.add((str(m.get("attack") or ATTACK_RE.match(summary.condition).group(1)), m.get("eps"),
                 m.get("alpha"), m.get("steps")))
    return out


def _attack_label(params):
    """'FGSM (ε = 0.08)', 'BIM (ε = 0.08, α = 0.01, 10 steps)'; several settings joined by ' / '."""
    texts = []
    for attack, eps, alpha, steps in sorted(params, key=lambda p: tuple(str(x) for x in p)):
        parts = [f"ε = {eps:g}" if eps is not None else "ε = ?"]
        if attack == "bim":
            parts += ([f"α = {alpha:g}"] if alpha is not None else []) + ([f"{steps} steps"] if steps else [])
        texts.append(", ".join(parts))
    attack = sorted(params)[0][0].upper() if params else "?"
    return f"{attack} ({' / '.join(texts)})"


def attack_section(summaries, descs, cell_fn):
    """'## Adversarial attacks (Table 3 layout)' lines (none without test_fgsm/test_bim): per corpus
    one table, a block of rows clean / FGSM / BIM per augmentation, one column per model."""
    corpora = _corpora_with(summaries, is_attack)
    if not corpora:
        return []
    runs = [r for s in summaries if is_attack(s.condition) for r in s.runs]
    padded = sum(1 for r in runs if r.metrics.get("perturb_padding"))
    L = ["## Adversarial attacks (Table 3 layout)", "",
         "UAR (%), mean ± std as in the UAR table, under white-box attacks with the true label "
         "(paper 1 sec. 5.3): FGSM, one signed-gradient step of size ε, and BIM, steps of α clipped "
         "to the ε-ball; the clean row is the unattacked test set. ε and α are L∞ bounds on the "
         "**normalised** features, i.e. after the training set's mean/variance normalisation, so "
         "they are in units of each feature dimension's training standard deviation (not of the "
         "raw log spectrogram); values from each run's metrics.json (`eps`, `alpha`, `steps`). " +
         ("Only real frames are perturbed, not the zero padding of short segments."
          if not padded else f"In {padded} of {len(runs)} runs the zero padding of short segments "
                              f"was perturbed too (--perturb-padding)."), ""]
    for c in corpora:
        columns, augs, cells = model_grid(summaries, descs, c)
        conds = sorted({s.condition for s in summaries if s.corpus == c and (is_attack(s.condition) or
                                                                           s.condition == CLEAN)},
                       key=condition_order)
        labels, mixed = {}, {}
        for cond in conds:
            if cond == CLEAN:
                labels[cond], mixed[cond] = "clean", False
            else:
                params = set().union(*[_attack_params(s) for s in summaries if s.corpus == c and s.condition == cond])
                labels[cond], mixed[cond] = _attack_label(params), len(params) > 1

        def attack_cell(s):
            # a row that mixes settings (e.g. re-scored with another eps) says which cell has which
            if not mixed[s.condition]:
                return cell_fn(s)
            return f"{cell_fn(s)} ({_attack_label(_attack_params(s)).split(' ', 1)[1][1:-1]})"
        rows = []
        for aug in augs:
            if not any((aug, col, cond) in cells for col in columns for cond in conds if cond != CLEAN):
                continue
            rows.append([f"**{aug_name(aug)}**"] + [""] * len(columns))
            for cond in conds:
                rows.append([labels[cond]] + [_grid_cell(cells.get((aug, col, cond)), attack_cell)
                                              for col in columns])
        L += [f"### {c}", ""] + _table(["Attack"] + columns, rows) + [""]
    return L


def bar_chart_name(corpus, condition):
    """'uar_<corpus>_<condition>.png' ('emodb/all4', 'test_snr0' -> 'uar_emodb_all4_snr0.png')."""
    cond = condition[5:] if condition.startswith("test_") else condition
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", f"uar_{corpus}_{cond}") + ".png"


def write_uar_bar_charts(summaries, descs, out_dir):
    """One grouped UAR bar chart (paper 1, Figure 2: groups = models, bars = augmentations, ± std
    error bars) per corpus and condition that has more than one model or augmentation, written
    into out_dir; (corpus, condition) -> path."""
    paths = {}
    for c in dict.fromkeys(s.corpus for s in summaries):
        columns, augs, cells = model_grid(summaries, descs, c)
        conds = sorted({s.condition for s in summaries if s.corpus == c}, key=condition_order)
        for cond in conds:
            cols = [col for col in columns if any((a, col, cond) in cells for a in augs)]
            used = [a for a in augs if any((a, col, cond) in cells for col in cols)]
            if len(cols) < 2 and len(used) < 2:
                continue
            series = []           # (label, {column: summary})
            for a in used:
                width = max(len(cells.get((a, col, cond), [])) for col in cols)
                if width == 1:
                    series.append((aug_name(a), {col: cells[(a, col, cond)][0]
                                                 for col in cols if (a, col, cond) in cells}))
                else:         # several tags of one model and augmentation: a bar per tag
                    for col in cols:
                        for s in cells.get((a, col, cond), []):
                            series.append((f"{aug_name(a)} [{s.tag}]", {col: s}))
            mean = [[100 * ss[col].uar_mean if col in ss else math.nan for col in cols] for _, ss in series]
            std = [[100 * ss[col].uar_std if col in ss else math.nan for col in cols] for _, ss in series]
            over = sorted({f"{s.n} {s.mode}" for _, ss in series for s in ss.values()})
            path = os.path.join(out_dir, bar_chart_name(c, cond))
            classes = next(iter(series[0][1].values())).classes
            save_bar_chart_png(path, cols, [lab for lab, _ in series], mean, std,
                               title=f"{c} {cond}: UAR mean ± std (over {', '.join(over)})",
                               chance=100.0 / len(classes))
            paths[(c, cond)] = path
    return paths


def bar_chart_section(bar_charts, out_dir):
    """'## UAR bar charts (paper 1, Figure 2 layout)' lines linking the PNGs (none without charts)."""
    if not bar_charts:
        return []
    L = ["## UAR bar charts (paper 1, Figure 2 layout)", "",
         "Per corpus and test condition: one group of bars per model, one bar per augmentation, "
         "height the mean UAR (%) (written at its foot), error bar ± std as in the UAR table; as in the "
         "paper, the y axis starts a little below the lowest bar, not necessarily at 0, and the dashed "
         "line is the chance level (100 % / number of classes).",
         ""]
    for (c, cond), path in bar_charts.items():
        rel = _rel(path, out_dir)
        L += [f"- [{c} {cond}]({rel})", "", f"  ![UAR bar chart, {c} {cond}]({rel})", ""]
    return L
