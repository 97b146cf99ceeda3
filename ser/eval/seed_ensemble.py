"""The mean posterior of an experiment's seeds (repeats), or of several experiments' seeds, scored
as an experiment of its own.

Repeating a training with other seeds gives mean ± std over repeats (the report); the repeats'
models can also be combined, and so can experiments that differ in their input (e.g. the same
model on spectrograms and on log-mel bands: late fusion). For every fold and every test condition
that all members have scored, the utterance posteriors of their predictions.tsv are averaged
(each member with the same weight) and scored by ser.eval.scoring.write_scores, so the report
reads the ensemble like any other experiment tag:

    <exp>/<out_tag>/fold.<k>/seed1/<condition>/  predictions.tsv, metrics.json (with ensemble_seeds),
                                                confusion.png, done
    <exp>/<out_tag>/fold.<k>/seed1/config.yaml  the first member's training config (fold dir, setting)
    <exp>/<out_tag>/tag.yaml                    setting (the report row's label), ensemble_of (the
                                                member tags), ensemble_seeds; with several tags
                                                also their features and models

A member tag may itself be a seed ensemble (its seed1, whatever the number of seeds it averages):
fusing ensembles weights each experiment equally rather than each run.

Members and the averaging are fixed before any test score is seen: every seed of every fold
counts, none is chosen. A fold without all its members finished is an error, as the ensemble of
that fold would silently have fewer members.
"""
import os

import numpy as np
import yaml

from ser.data.atomic import atomic_copy, atomic_write_text, building_dir
from ser.errors import SerError
from ser.eval.aggregate import describe, is_scored, run_config, sorted_subdirs, tag_overrides, tag_run_dirs
from ser.eval.scoring import read_predictions, write_scores
from ser.runtime.config import read_yaml

ENSEMBLE_SEED = 1   # the ensemble is one run per fold


def setting_label(seeds, num_tags=1, of_ensembles=False):
    """The report's label of an ensemble; of_ensembles: some members are seed ensembles themselves."""
    if num_tags > 1 and of_ensembles:
        return f"equal-weight mean posterior of {num_tags} experiments, a seed ensemble counting as one"
    seeds = " ".join(map(str, seeds))
    return f"mean posterior of seeds {seeds}" if num_tags == 1 else \
        f"mean posterior of {num_tags} experiments, seed{'s' if ' ' in seeds else ''} {seeds} each"


def _joined(values):
    """'spec + mel' of the distinct values, in member order."""
    return " + ".join(dict.fromkeys(str(v) for v in values))


def ensemble_members(exp_dir, tag, seeds=None, trained=True):
    """({fold: [run_dir per seed]}, seeds) of a tag's finished trainings; every fold must have every seed.
    trained=False for a seed ensemble (is_ensemble): it trains nothing, so its runs are members once
    they exist, and ensembles of different seed counts fuse with one weight each."""
    base = os.path.join(exp_dir, tag)
    if not os.path.isdir(base):
        raise SerError(f"experiment '{tag}': no directory {base}")
    runs = {}
    for fold, seed, run_dir in tag_run_dirs(exp_dir, tag):
        runs.setdefault(fold, {})[seed] = run_dir
    if not runs:
        raise SerError(f"experiment '{tag}': no runs under {base} (fold.<k>/seed<s>)")
    seeds = sorted(seeds) if seeds else sorted({s for per_fold in runs.values() for s in per_fold})
    if not seeds or len(set(seeds)) != len(seeds):
        raise SerError(f"give distinct seeds, not {' '.join(map(str, seeds)) or 'none'}")
    members = {}
    for fold in sorted(runs):
        for s in seeds:
            run_dir = runs[fold].get(s)
            if run_dir is None or (trained and not os.path.exists(os.path.join(run_dir, "done"))):
                raise SerError(f"{base}/fold.{fold}/seed{s}: training not finished (no done): "
                               f"run stage 3 for every seed, or give --seeds")
        members[fold] = [runs[fold][s] for s in seeds]
    return members, seeds


def is_ensemble(tag_dir):
    """Whether an experiment dir was written by write_seed_ensemble (it has a tag.yaml naming members)."""
    try:
        ensemble_source(tag_dir)
    except SerError:
        return False
    return True


def mean_posteriors(cond_dirs):
    """(utts, true class indices, mean posteriors, classes) of the members' predictions.tsv files,
    which must list the same utterances, labels and classes in the same order."""
    first = None
    total = None
    for d in cond_dirs:
        path = os.path.join(d, "predictions.tsv")
        utts, true, _, post, classes = read_predictions(path)
        if first is None:
            first = (path, utts, true, classes)
            total = np.zeros_like(post)
        elif (utts, true, classes) != tuple(first[1:]):
            raise SerError(f"{path}: not the utterances, labels and classes of {first[0]}: "
                           f"members of an ensemble must score the same test list")
        total += post
    path, utts, true, classes = first
    index = {c: i for i, c in enumerate(classes)}
    return utts, np.asarray([index[t] for t in true], dtype=np.int64), total / len(cond_dirs), classes


def write_seed_ensemble(exp_dir, tags, out_tag, seeds=None):
    """Write <exp_dir>/<out_tag> (see the module docstring) from the seeds of the experiment tag(s)
    `tags` (a tag or a list), replacing an older ensemble. Returns ({fold: {condition: metrics}}, seeds)."""
    tags = [tags] if isinstance(tags, str) else list(tags)
    if not tags or len(set(tags)) != len(tags):
        raise SerError(f"give distinct experiment tags, not {' '.join(tags) or 'none'}")
    if out_tag in tags:
        raise SerError(f"--out-tag '{out_tag}' is a member experiment")
    of_ensembles = [is_ensemble(os.path.join(exp_dir, t)) for t in tags]
    per_tag = [ensemble_members(exp_dir, t, seeds, trained=not e) for t, e in zip(tags, of_ensembles)]
    seeds = per_tag[0][1]
    if len(tags) * len(seeds) < 2:   # one seed suffices when several experiments are fused
        raise SerError(f"an ensemble needs at least two members (seeds x experiments), "
                       f"not seed {seeds[0]} of '{tags[0]}' alone")
    for t, (members, s) in zip(tags[1:], per_tag[1:]):
        if s != seeds or set(members) != set(per_tag[0][0]):
            raise SerError(f"experiments '{tags[0]}' and '{t}' do not have the same folds and seeds "
                           f"(seeds {' '.join(map(str, seeds))} against {' '.join(map(str, s))}): give --seeds")
    members = {fold: [d for m, _ in per_tag for d in m[fold]] for fold in per_tag[0][0]}
    out = os.path.join(exp_dir, out_tag)
    if os.path.exists(out):
        try:
            ensemble_source(out)
        except SerError:
            raise SerError(f"{out} exists and is not a seed ensemble: choose another --out-tag") from None
    scored = {}
    with building_dir(out) as tmp:
        for fold, dirs in members.items():
            run_out = os.path.join(tmp, f"fold.{fold}", f"seed{ENSEMBLE_SEED}")
            os.makedirs(run_out)
            atomic_copy(os.path.join(dirs[0], "config.yaml"), os.path.join(run_out, "config.yaml"))
            conditions = [c for c, _ in sorted_subdirs(dirs[0])
                          if all(is_scored(os.path.join(d, c)) for d in dirs)]
            for cond in conditions:
                utts, y_true, post, classes = mean_posteriors([os.path.join(d, cond) for d in dirs])
                scored.setdefault(fold, {})[cond] = write_scores(
                    os.path.join(run_out, cond), utts, y_true, post, classes,
                    extra={"ensemble_seeds": seeds, "ensemble_of": tags})
        if not scored:
            raise SerError(f"no test condition is scored by every member of a fold: run stage 4 for every seed")
        first = min(members)
        descs = [describe(run_config(m[first][0]) or {}, tag_overrides(exp_dir, t), t, exp_dir)
                 for t, (m, _) in zip(tags, per_tag)]
        setting = setting_label(seeds, len(tags), any(of_ensembles))
        if len(tags) == 1 and descs[0].get("setting"):     # a refit's or a selection's seeds: 'refit on ...; mean posterior ...'
            setting = f"{descs[0]['setting']}; {setting}"
        tag_yaml = {"setting": setting, "ensemble_of": tags, "ensemble_seeds": seeds}
        if len(tags) > 1:
            tag_yaml.update(features=_joined(d["features"] for d in descs), model=_joined(d["model"] for d in descs))
        atomic_write_text(os.path.join(tmp, "tag.yaml"), yaml.safe_dump(tag_yaml, sort_keys=False))
    return scored, seeds


def ensemble_source(ensemble_dir):
    """(member tags, seeds) an existing ensemble was made from (its tag.yaml)."""
    path = os.path.join(ensemble_dir, "tag.yaml")
    try:
        info = read_yaml(path) or {}
    except OSError as e:
        raise SerError(f"{path}: unreadable ({' '.join(str(e).split())})") from None
    tag, seeds = (info.get("ensemble_of"), info.get("ensemble_seeds")) if isinstance(info, dict) else (None, None)
    tags = [tag] if isinstance(tag, str) else tag
    if (not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags)
            or not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds)):
        raise SerError(f"{path}: not an ensemble (needs 'ensemble_of': tags and 'ensemble_seeds': a list of seeds)")
    return tags, seeds
