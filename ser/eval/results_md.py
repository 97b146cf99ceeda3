"""Render aggregated results (ser.eval.aggregate) as a RESULTS.md report.

The main table has the layout of paper 1's Table 1: one row per model (experiment tag), one
column per corpus x test condition, cells "UAR mean ± std" in percent. Further sections: WA in
the same layout, the models (features, augmentation, epochs, runs, training time), per-fold
UAR/WA with the test speaker, per-class recall, and links to the confusion matrices.
"""
import math
import os
import subprocess
from datetime import datetime

from ser.eval.aggregate import DDOF, train_time
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
    return (cond != "test_clean", cond)


def _model_key(desc):
    m = str(desc.get("model"))
    return (MODEL_ORDER.index(m) if m in MODEL_ORDER else len(MODEL_ORDER), m,
            desc.get("augmentation") != "none", str(desc.get("augmentation")), desc["name"])


def row_labels(descs):
    """tag -> display label 'model (features, augmentation)', the tag added where labels repeat."""
    labels = {}
    for tag, d in descs.items():
        extra = [str(d.get("features"))] + ([str(d["augmentation"])] if d.get("augmentation") not in (None, "none") else [])
        labels[tag] = f"{d.get('model')} ({', '.join(extra)})"
    counts = {}
    for lab in labels.values():
        counts[lab] = counts.get(lab, 0) + 1
    return {tag: (lab if counts[lab] == 1 else f"{lab} `{tag}`") for tag, lab in labels.items()}


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


def render(summaries, descs, out_path, title="Results", corpus_notes=None, protocol_note=None,
           confusion_paths=None, date=None, revision=None, digits=1):
    """Markdown text of the report. descs: (corpus, tag) -> description dict (aggregate.tag_config)."""
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
        L.append(f"- **{c}**" + (f": {note}" if note else "") +
                 f". Leave-one-speaker-out, {len(folds)} folds (each tests on one speaker, another "
                 f"speaker validates, the rest train); repeats (seeds): {len(seeds)} "
                 f"({', '.join(str(x) for x in seeds)}).")
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
             f"(early stopping and model selection on the validation speaker's UAR).")
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
    # --- Table 1 layout -------------------------------------------------------------------------
    header = ["Model"] + [f"{c} {cond}" for c, cond in columns]
    for name, key in (("UAR", "uar"), ("WA", "wa")):
        L += [f"## {name} (%)", ""]
        rows = []
        for t in tags:
            row = [labels[t]]
            for c, cond in columns:
                s = by_key.get((c, t, cond))
                row.append(cell(s, getattr(s, f"{key}_mean", None), getattr(s, f"{key}_std", None)))
            rows.append(row)
        L += _table(header, rows) + [""]
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


def _mean(d):
    return sum(d.values()) / len(d) if d else math.nan
