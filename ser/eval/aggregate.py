"""Collect scored runs of experiment trees and aggregate them over folds and repeats (seeds).

Layout (one run = one fold x seed; one scored condition = one sub-directory):

    <exp>/<tag>/fold.<k>/seed<s>/                 training outputs (config.yaml, history.tsv, ...)
    <exp>/<tag>/fold.<k>/seed<s>/<condition>/     metrics.json + done (test_clean, test_snr0, ...)

Aggregation of one (corpus, tag, condition) follows paper 1 (section 4.4: every model is
evaluated repeatedly, mean and standard deviation are reported):
- a seed's UAR (WA) is the mean over its folds (leave-one-speaker-out: the mean over speakers);
- with >= 2 seeds that cover all folds, the result is mean +- std over those seeds;
- otherwise (one repeat) it is mean +- std over the folds;
std is the sample standard deviation (ddof=1). A condition directory without `done` is ignored.
"""
import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import yaml

from ser.errors import SerError

FOLD_RE = re.compile(r"^fold\.(\d+)$")
SEED_RE = re.compile(r"^seed(\d+)$")
DDOF = 1


@dataclass
class Run:
    """One scored condition of one fold x seed."""
    corpus: str
    exp: str
    tag: str
    fold: int
    seed: int
    condition: str
    metrics: dict
    path: str          # the condition directory
    run_dir: str       # the fold x seed training directory


@dataclass
class Summary:
    """Aggregate of one (corpus, tag, condition)."""
    corpus: str
    tag: str
    condition: str
    classes: list
    folds: list
    seeds: list
    mode: str                       # "seeds" or "folds": what the std is over
    uar_mean: float
    uar_std: float
    wa_mean: float
    wa_std: float
    n: int                          # number of values behind mean/std
    complete: bool                  # every seed used has every fold
    excluded_seeds: list
    seed_uar: dict                  # seed -> fold-averaged UAR (seeds used)
    seed_wa: dict
    fold_uar: dict                  # fold -> UAR averaged over the seeds used
    fold_wa: dict
    fold_speakers: dict             # fold -> speakers of its test list
    confusion: np.ndarray           # summed over the runs used
    per_class_recall: list          # from the summed confusion (nan: class never seen)
    runs: list = field(repr=False, default_factory=list)       # the runs used
    all_runs: list = field(repr=False, default_factory=list)   # including excluded seeds
    missing_folds: list = field(default_factory=list)  # folds of the experiment not scored at all


def corpus_name(exp_dir):
    """'egs/emodb/exp' -> 'emodb', 'egs/emodb/exp/all4' -> 'emodb/all4' (the recipe names the
    corpus, what follows exp/ the data set); a path without an `exp` part -> its own name."""
    parts = os.path.abspath(exp_dir).split(os.sep)
    if "exp" in parts[1:]:
        i = len(parts) - 1 - parts[::-1].index("exp")
        return "/".join([parts[i - 1]] + parts[i + 1:])
    return parts[-1]


def _sorted_dirs(path, pattern=None):
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        if os.path.isdir(os.path.join(path, n)):
            m = pattern.match(n) if pattern is not None else None
            if pattern is None or m:
                out.append((n, m))
    return out


def read_metrics(path):
    """A metrics.json dict (SerError naming the file if unreadable or lacking keys)."""
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except json.JSONDecodeError as e:
        raise SerError(f"{path}: not valid JSON ({e})") from None
    for key in ("uar", "wa", "confusion", "classes"):
        if key not in m:
            raise SerError(f"{path}: no '{key}'")
    return m


def collect_runs(exp_dir, corpus=None):
    """Every scored condition (with metrics.json and done) below an experiment directory."""
    if not os.path.isdir(exp_dir):
        raise SerError(f"no experiment directory '{exp_dir}'")
    corpus = corpus or corpus_name(exp_dir)
    runs = []
    for tag, _ in _sorted_dirs(exp_dir):
        for fold_name, fm in _sorted_dirs(os.path.join(exp_dir, tag), FOLD_RE):
            fold_dir = os.path.join(exp_dir, tag, fold_name)
            for seed_name, sm in _sorted_dirs(fold_dir, SEED_RE):
                run_dir = os.path.join(fold_dir, seed_name)
                for cond, _ in _sorted_dirs(run_dir):
                    cdir = os.path.join(run_dir, cond)
                    mpath = os.path.join(cdir, "metrics.json")
                    if os.path.isfile(mpath) and os.path.exists(os.path.join(cdir, "done")):
                        runs.append(Run(corpus, exp_dir, tag, int(fm.group(1)), int(sm.group(1)), cond,
                                        read_metrics(mpath), cdir, run_dir))
    return runs


def mean_std(values):
    """(mean, sample std with ddof=1); std is nan for fewer than two values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=DDOF)) if v.size > 1 else math.nan


def _num(x):
    return math.nan if x is None else float(x)


def summarize(runs):
    """Summaries of a list of runs, one per (corpus, tag, condition), in first-seen order."""
    groups = {}
    for r in runs:
        groups.setdefault((r.corpus, r.tag, r.condition), []).append(r)
    summaries = [_summarize_group(key, rs) for key, rs in groups.items()]
    expected = {}
    for s in summaries:
        r = s.all_runs[0]
        if (r.exp, r.tag) not in expected:
            expected[(r.exp, r.tag)] = expected_folds(r.exp, r.tag, s.all_runs)
        s.missing_folds = sorted(expected[(r.exp, r.tag)] - set(s.folds))
        if s.missing_folds:
            s.complete = False
    return summaries


def expected_folds(exp_dir, tag, runs):
    """The folds a tag's rows must cover: its fold.<k> dirs and the folds next to the fold dir
    its runs trained on (config.yaml data.fold_dir, e.g. data/all_folds/3 -> 1..N), so that a
    report over the folds scored so far cannot pass for a complete one."""
    folds = {int(m.group(1)) for _, m in _sorted_dirs(os.path.join(exp_dir, tag), FOLD_RE)}
    for r in runs[:1]:
        cfg = run_config(r.run_dir)
        fold_dir = (cfg.get("data") or {}).get("fold_dir") if cfg else None
        if fold_dir:
            parent = os.path.dirname(resolve_path(str(fold_dir), exp_dir).rstrip("/"))
            if os.path.isdir(parent):
                folds |= {int(n) for n in os.listdir(parent)
                          if n.isdigit() and os.path.isfile(os.path.join(parent, n, "test.list"))}
    return folds


def _summarize_group(key, runs):
    corpus, tag, condition = key
    classes = runs[0].metrics["classes"]
    for r in runs:
        if r.metrics["classes"] != classes:
            raise SerError(f"{r.path}/metrics.json: classes {r.metrics['classes']} differ from {classes} "
                           f"of {runs[0].path}/metrics.json")
    table = {}
    for r in runs:
        table.setdefault(r.seed, {})[r.fold] = r
    all_folds = sorted({r.fold for r in runs})
    seeds = sorted(table)
    complete = [s for s in seeds if sorted(table[s]) == all_folds]
    if len(complete) >= 2:
        mode, used = "seeds", complete
    elif complete:
        mode, used = "folds", complete[:1]
    else:  # no seed has every fold yet (runs in progress): all runs, over folds
        mode, used = "folds", seeds
    used_runs = [table[s][f] for s in used for f in sorted(table[s])]
    seed_uar = {s: float(np.mean([_num(table[s][f].metrics["uar"]) for f in table[s]])) for s in used}
    seed_wa = {s: float(np.mean([_num(table[s][f].metrics["wa"]) for f in table[s]])) for s in used}
    fold_uar, fold_wa, fold_spk = {}, {}, {}
    for f in all_folds:
        rs = [table[s][f] for s in used if f in table[s]]
        if rs:
            fold_uar[f] = float(np.mean([_num(r.metrics["uar"]) for r in rs]))
            fold_wa[f] = float(np.mean([_num(r.metrics["wa"]) for r in rs]))
            fold_spk[f] = fold_speakers(rs[0])
    if mode == "seeds":
        (um, us), (wm, ws) = mean_std(list(seed_uar.values())), mean_std(list(seed_wa.values()))
        n = len(used)
    else:
        (um, us), (wm, ws) = mean_std(list(fold_uar.values())), mean_std(list(fold_wa.values()))
        n = len(fold_uar)
    confusion = np.sum([np.asarray(r.metrics["confusion"], dtype=np.int64) for r in used_runs], axis=0)
    support = confusion.sum(axis=1)
    recall = [float(confusion[i, i] / support[i]) if support[i] else math.nan for i in range(len(classes))]
    return Summary(corpus, tag, condition, list(classes), all_folds, seeds, mode, um, us, wm, ws, n,
                   bool(complete), [s for s in seeds if s not in used], seed_uar, seed_wa,
                   fold_uar, fold_wa, fold_spk, confusion, recall, used_runs, list(runs))


def fold_speakers(run):
    """Test speakers of a run: metrics.json `speakers`, else the fold dir's info.yaml via config.yaml."""
    spks = run.metrics.get("speakers")
    if spks:
        return list(spks)
    cfg = run_config(run.run_dir)
    fold_dir = (cfg.get("data") or {}).get("fold_dir") if cfg else None
    if fold_dir:
        info = _read_yaml(os.path.join(resolve_path(fold_dir, run.exp), "info.yaml"))
        if info and info.get("test_speakers"):
            return [str(s) for s in info["test_speakers"]]
    return []


# --- run and experiment descriptions --------------------------------------------------------------
def resolve_path(path, exp_dir):
    """A path from a config: as is if it exists (or is absolute), else relative to the recipe
    directory that holds `exp_dir` (configs store paths relative to egs/<corpus>)."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(exp_dir)), path)


def _read_yaml(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except yaml.YAMLError as e:
        raise SerError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    return data if isinstance(data, dict) else None


def run_config(run_dir):
    """The resolved training config of a run (its config.yaml), or None."""
    return _read_yaml(os.path.join(run_dir, "config.yaml"))


def tag_config(exp_dir, tag, runs=()):
    """Description of an experiment tag: <exp>/<tag>/tag.yaml, else <exp>/<tag>/config.yaml, else the
    first run's config.yaml (tag.yaml keys override: name, model, features, augmentation, ...)."""
    base = os.path.join(exp_dir, tag)
    tag_yaml = _read_yaml(os.path.join(base, "tag.yaml")) or {}
    cfg = _read_yaml(os.path.join(base, "config.yaml"))
    if cfg is None:
        for r in runs:
            cfg = run_config(r.run_dir)
            if cfg is not None:
                break
    return describe(cfg or {}, tag_yaml, tag, exp_dir)


def _feature_name(feats_dir, exp_dir):
    """'data/all_spec' -> 'spec' (type from <feats_dir>/conf.yaml when readable)."""
    if not feats_dir:
        return None
    conf = _read_yaml(os.path.join(resolve_path(feats_dir, exp_dir), "conf.yaml"))
    if conf and conf.get("type"):
        return str(conf["type"])
    return os.path.basename(os.path.normpath(feats_dir))


# Augmentation settings of the recipes (run.sh `augs`), in the order of paper 1's tables and
# paper 2's synthetic-data settings; the key is the tag's <aug> part (`sp+mixup` -> `sp_mixup`).
AUG_ORDER = ["none", "sp", "mixup", "sp_mixup", "syn", "real_syn", "real_syn_mixup"]
AUG_NAMES = {"none": "no augmentation", "sp": "speed perturbation", "mixup": "mixup",
             "sp_mixup": "speed perturbation + mixup", "syn": "synthetic only",
             "real_syn": "real + synthetic", "real_syn_mixup": "real + synthetic + mixup"}
_TAG_AUG_RE = re.compile(r"_(" + "|".join(sorted(AUG_ORDER, key=len, reverse=True)) + r")_[0-9a-f]+$")


def aug_key(cfg, tag):
    """The augmentation setting of a tag ('none', 'sp', 'mixup', 'sp_mixup', 'syn', 'real_syn',
    'real_syn_mixup'): from its training config (data.aug_dirs = speed-perturbed copies,
    data.train_source = synthetic/both, mixup.enabled), else from the tag name
    `<feat>_<model>_<aug>_<hash>` (run.sh writes `real+syn+mixup` as `real_syn+mixup`), else 'none'."""
    if not cfg:
        m = _TAG_AUG_RE.search(tag.replace("+", "_"))
        return m.group(1) if m else "none"
    data = cfg.get("data") or {}
    parts = []
    if data.get("aug_dirs"):
        parts.append("sp")
    source = data.get("train_source") or "real"
    if source == "synthetic":
        parts.append("syn")
    elif source == "both":
        parts.append("real_syn")
    if (cfg.get("mixup") or {}).get("enabled"):
        parts.append("mixup")
    return "_".join(parts) or "none"


def augmentation_label(cfg):
    """What a training config adds to the real data, for people: 'speed perturbation ×0.9, ×1.1',
    'synthetic only', 'real + synthetic', 'mixup α=0.2' (joined by ' + '), or 'none'."""
    data = cfg.get("data") or {}
    parts = []
    aug_dirs = data.get("aug_dirs") or []
    if isinstance(aug_dirs, str):
        aug_dirs = aug_dirs.split()
    if aug_dirs:
        names = [os.path.basename(os.path.normpath(d)) for d in aug_dirs]
        factors = [re.search(r"_sp(\d+(?:\.\d+)?)(?:_|$)", n) for n in names]
        parts.append("speed perturbation " + ", ".join(f"×{m.group(1)}" for m in factors) if all(factors)
                     else "copies from " + ", ".join(names))
    source = data.get("train_source") or "real"
    if source in ("synthetic", "both"):
        parts.append(AUG_NAMES["syn" if source == "synthetic" else "real_syn"])
    if (cfg.get("mixup") or {}).get("enabled"):
        parts.append(f"mixup α={cfg['mixup'].get('alpha')}")
    return " + ".join(parts) or "none"


def describe(cfg, tag_yaml, tag, exp_dir="."):
    """Display fields of a tag from its training config and optional tag.yaml overrides."""
    data = cfg.get("data") or {}
    desc = {
        "name": tag,
        "model": cfg.get("model") or cfg.get("model_name") or "?",
        "features": _feature_name(data.get("feats_dir"), exp_dir) or "?",
        "augmentation": augmentation_label(cfg),
        "max_epochs": cfg.get("max_epochs"),
        "fold_dir": data.get("fold_dir"),
        "aug_key": aug_key(cfg, tag),
    }
    desc.update({k: v for k, v in tag_yaml.items() if v is not None})
    return desc


def _log_span(path):
    """Seconds between the first and last time stamp of a train.log ('YYYY-mm-dd HH:MM:SS ...')."""
    stamps = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    stamps.append(datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
                except ValueError:
                    continue
    except FileNotFoundError:
        return None
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) >= 2 else None


def read_history(run_dir):
    """Rows of a run's history.tsv as dicts of floats ([] if absent)."""
    path = os.path.join(run_dir, "history.tsv")
    try:
        with open(path, encoding="utf-8") as f:
            lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    except FileNotFoundError:
        return []
    if not lines:
        return []
    header = lines[0]
    rows = []
    for lineno, parts in enumerate(lines[1:], 2):
        if len(parts) != len(header):
            raise SerError(f"{path}:{lineno}: expected {len(header)} fields, got {len(parts)}")
        rows.append({k: float(v) for k, v in zip(header, parts)})
    return rows


def run_train_time(run_dir):
    """(training seconds, epochs) of a run: the sum of history.tsv's per-epoch `time`, else the
    time span of train.log; (None, None) when neither exists."""
    rows = read_history(run_dir)
    if rows and "time" in rows[0]:
        return float(sum(r["time"] for r in rows)), len(rows)
    return _log_span(os.path.join(run_dir, "train.log")), (len(rows) or None)


def train_time(summary):
    """Training wall time of the runs behind a summary: dict total, mean per run, runs, mean epochs."""
    times, epochs = [], []
    for r in summary.runs:
        t, e = run_train_time(r.run_dir)
        if t is not None:
            times.append(t)
        if e is not None:
            epochs.append(e)
    return {"total": float(sum(times)) if times else None,
            "per_run": float(np.mean(times)) if times else None,
            "runs": len(times),
            "mean_epochs": float(np.mean(epochs)) if epochs else None}
