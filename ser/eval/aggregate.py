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
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np
import yaml

from ser.augment import settings as augmentation_settings
from ser.data import synthetic_set
from ser.data.fold_dir import fold_numbers, info_speakers, read_info
from ser.data.json_file import read_json_object
from ser.errors import SerError
from ser.features import feature_label
from ser.runtime.config import read_yaml

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
    parts, i = _exp_component(exp_dir)
    return "/".join([parts[i - 1]] + parts[i + 1:]) if i else parts[-1]


def recipe_layout(exp_dir):
    """(recipe dir, its name, the experiment dir relative to it) of egs/<corpus>/exp[/<data set>]:
    ('/.../egs/emodb', 'emodb', 'exp/all'); (None, None, None) without an `exp` component."""
    parts, i = _exp_component(exp_dir)
    if not i:
        return None, None, None
    return os.sep.join(parts[:i]) or os.sep, parts[i - 1], os.sep.join(parts[i:])


def _exp_component(exp_dir):
    """(the absolute path's components, index of its last `exp` component or None)."""
    parts = os.path.abspath(exp_dir).split(os.sep)
    return parts, (len(parts) - 1 - parts[::-1].index("exp") if "exp" in parts[1:] else None)


def sorted_subdirs(path, pattern=None):
    """[(name, match)] of the sub-directories of `path` (matching `pattern` if given), by name;
    hidden ones (e.g. a selection being written, ser.eval.selection) are not experiments."""
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        if not n.startswith(".") and os.path.isdir(os.path.join(path, n)):
            m = pattern.match(n) if pattern is not None else None
            if pattern is None or m:
                out.append((n, m))
    return out


def read_metrics(path):
    """A metrics.json dict (SerError naming the file if unreadable or lacking keys)."""
    m = read_json_object(path)
    for key in ("uar", "wa", "confusion", "classes"):
        if key not in m:
            raise SerError(f"{path}: no '{key}'")
    return m


def tag_run_dirs(exp_dir, tag):
    """[(fold, seed, run_dir)] of an experiment tag: its <tag>/fold.<k>/seed<s> dirs, in name order."""
    out = []
    for fold_name, fm in sorted_subdirs(os.path.join(exp_dir, tag), FOLD_RE):
        fold_dir = os.path.join(exp_dir, tag, fold_name)
        for seed_name, sm in sorted_subdirs(fold_dir, SEED_RE):
            out.append((int(fm.group(1)), int(sm.group(1)), os.path.join(fold_dir, seed_name)))
    return out


def is_scored(cond_dir):
    """Whether a condition dir holds a finished score (metrics.json and done)."""
    return os.path.isfile(os.path.join(cond_dir, "metrics.json")) and os.path.exists(os.path.join(cond_dir, "done"))


def collect_runs(exp_dir, corpus=None):
    """Every scored condition (with metrics.json and done) below an experiment directory."""
    if not os.path.isdir(exp_dir):
        raise SerError(f"no experiment directory '{exp_dir}'")
    corpus = corpus or corpus_name(exp_dir)
    runs = []
    for tag, _ in sorted_subdirs(exp_dir):
        for fold, seed, run_dir in tag_run_dirs(exp_dir, tag):
            for cond, _ in sorted_subdirs(run_dir):
                cdir = os.path.join(run_dir, cond)
                if is_scored(cdir):
                    runs.append(Run(corpus, exp_dir, tag, fold, seed, cond,
                                    read_metrics(os.path.join(cdir, "metrics.json")), cdir, run_dir))
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
    folds = {int(m.group(1)) for _, m in sorted_subdirs(os.path.join(exp_dir, tag), FOLD_RE)}
    for r in runs[:1]:
        cfg = run_config(r.run_dir)
        fold_dir = (cfg.get("data") or {}).get("fold_dir") if cfg else None
        if fold_dir:
            folds |= set(fold_numbers(os.path.dirname(resolve_path(str(fold_dir), exp_dir).rstrip("/"))))
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
    return fold_info_speakers(run, "test_speakers")


def fold_info_speakers(run, key):
    """Speakers of a run's fold under `key` (test_speakers, valid_speakers) of the fold dir's info.yaml
    (via the run's config.yaml); [] when the run names no fold dir."""
    cfg = run_config(run.run_dir)
    fold_dir = (cfg.get("data") or {}).get("fold_dir") if cfg else None
    if fold_dir:
        return info_speakers(read_info(resolve_path(fold_dir, run.exp)), key)
    return []


# --- run and experiment descriptions --------------------------------------------------------------
def resolve_path(path, exp_dir):
    """A path from a config: as is if it exists (or is absolute), else relative to the recipe
    directory that holds `exp_dir` (configs store paths relative to egs/<corpus>)."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    recipe = recipe_layout(exp_dir)[0]   # egs/<corpus>/exp[/<data set>]: the recipe holds `exp`
    return os.path.join(recipe or os.path.dirname(os.path.abspath(exp_dir)), path)


def _read_yaml(path):
    try:
        data = read_yaml(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return data if isinstance(data, dict) else None


def run_config(run_dir):
    """The resolved training config of a run (its config.yaml), or None."""
    return _read_yaml(os.path.join(run_dir, "config.yaml"))


def tag_overrides(exp_dir, tag):
    """<exp>/<tag>/tag.yaml as a dict ({} without one): what a selection or an ensemble says of itself."""
    return _read_yaml(os.path.join(exp_dir, tag, "tag.yaml")) or {}


def tag_config(exp_dir, tag, runs=()):
    """Description of an experiment tag: <exp>/<tag>/tag.yaml, else <exp>/<tag>/config.yaml, else the
    first run's config.yaml (tag.yaml keys override: name, model, features, augmentation, ...)."""
    base = os.path.join(exp_dir, tag)
    tag_yaml = tag_overrides(exp_dir, tag)
    cfg = _read_yaml(os.path.join(base, "config.yaml"))
    if cfg is None:
        for r in runs:
            cfg = run_config(r.run_dir)
            if cfg is not None:
                break
    return describe(cfg or {}, tag_yaml, tag, exp_dir)


def _feature_name(feats_dir, exp_dir):
    """'data/all_spec' -> 'spec' (ser.features.feature_label of <feats_dir>/conf.yaml when readable,
    e.g. 'ComParE_2016' for functionals)."""
    if not feats_dir:
        return None
    conf = _read_yaml(os.path.join(resolve_path(feats_dir, exp_dir), "conf.yaml"))
    if conf and conf.get("type"):
        return feature_label(conf)
    return os.path.basename(os.path.normpath(feats_dir))


def synthetic_source(cfg, exp_dir="."):
    """What made a training config's synthetic data (its first synthetic dir): the diffusion model's
    config (less data paths and seed) with the sampling settings of synthetic.yaml, or None. Rows
    trained on samples of differently trained diffusion models differ here, not in their own config."""
    syn_dirs = (cfg.get("data") or {}).get("synthetic_dirs") or []
    if not syn_dirs:
        return None
    syn_dir = resolve_path(syn_dirs[0], exp_dir)
    info = synthetic_set.read_info(syn_dir, required=False)
    model = _read_yaml(os.path.join(synthetic_set.model_dir_of(syn_dir, info), "config.yaml"))
    if model is None and info is None:
        return None
    source = {k: v for k, v in (model or {}).items() if k not in ("data", "seed")}
    source.update({k: info[k] for k in synthetic_set.SAMPLING_KEYS if k in (info or {})})
    return source


def setting_config(cfg, exp_dir="."):
    """A training config with, under `diffusion`, the source of its synthetic data (synthetic_source):
    what tells apart the settings of runs, for labels."""
    source = synthetic_source(cfg, exp_dir)
    return cfg if source is None else {**cfg, "diffusion": source}


def describe(cfg, tag_yaml, tag, exp_dir="."):
    """Display fields of a tag from its training config and optional tag.yaml overrides; its
    `config` is the setting_config."""
    data = cfg.get("data") or {}
    name, label = augmentation_settings.describe_config(cfg)
    desc = {
        "name": tag,
        "model": cfg.get("model") or cfg.get("model_name") or "?",
        "features": _feature_name(data.get("feats_dir"), exp_dir) or "?",
        "augmentation": label,
        "max_epochs": cfg.get("max_epochs"),
        "fold_dir": data.get("fold_dir"),
        "aug_key": augmentation_settings.key_of(name),
        "config": setting_config(cfg, exp_dir),
    }
    if data.get("train_on"):     # a refit (ser.training.refit): its own row, never merged with its source's
        desc["setting"] = f"refit on {data['train_on']}"
    desc.update({k: v for k, v in tag_yaml.items() if v is not None})
    return desc

