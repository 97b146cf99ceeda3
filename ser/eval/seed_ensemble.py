"""The mean posterior of an experiment's seeds (repeats), scored as an experiment of its own.

Repeating a training with other seeds gives mean ± std over repeats (the report); the repeats'
models can also be combined. For every fold and every test condition that all member seeds have
scored, the utterance posteriors of their predictions.tsv are averaged and scored by
ser.eval.scoring.write_scores, so the report reads the ensemble like any other experiment tag:

    <exp>/<out_tag>/fold.<k>/seed1/<condition>/  predictions.tsv, metrics.json (with ensemble_seeds),
                                                confusion.png, done
    <exp>/<out_tag>/fold.<k>/seed1/config.yaml  the first member's training config (fold dir, setting)
    <exp>/<out_tag>/tag.yaml                    setting (the report row's label), ensemble_of, seeds

Members and the averaging are fixed before any test score is seen: every seed of every fold
counts, none is chosen. A fold all of whose seeds have not finished training is an error, as
the ensemble of that fold would silently have fewer members.
"""
import os

import numpy as np
import yaml

from ser.data.atomic import atomic_copy, atomic_write_text, building_dir
from ser.errors import SerError
from ser.eval.aggregate import is_scored, sorted_subdirs, tag_run_dirs
from ser.eval.scoring import read_predictions, write_scores

ENSEMBLE_SEED = 1   # the ensemble is one run per fold


def setting_label(seeds):
    return f"mean posterior of seeds {' '.join(map(str, seeds))}"


def ensemble_members(exp_dir, tag, seeds=None):
    """({fold: [run_dir per seed]}, seeds) of a tag's finished trainings; every fold must have every seed."""
    base = os.path.join(exp_dir, tag)
    if not os.path.isdir(base):
        raise SerError(f"experiment '{tag}': no directory {base}")
    runs = {}
    for fold, seed, run_dir in tag_run_dirs(exp_dir, tag):
        runs.setdefault(fold, {})[seed] = run_dir
    if not runs:
        raise SerError(f"experiment '{tag}': no runs under {base} (fold.<k>/seed<s>)")
    seeds = sorted(seeds) if seeds else sorted({s for per_fold in runs.values() for s in per_fold})
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise SerError(f"an ensemble needs at least two distinct seeds, not {' '.join(map(str, seeds))}")
    members = {}
    for fold in sorted(runs):
        for s in seeds:
            run_dir = runs[fold].get(s)
            if run_dir is None or not os.path.exists(os.path.join(run_dir, "done")):
                raise SerError(f"{base}/fold.{fold}/seed{s}: training not finished (no done): "
                               f"run stage 3 for every seed, or give --seeds")
        members[fold] = [runs[fold][s] for s in seeds]
    return members, seeds


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


def write_seed_ensemble(exp_dir, tag, out_tag, seeds=None):
    """Write <exp_dir>/<out_tag> (see the module docstring), replacing an older ensemble.

    Returns ({fold: {condition: metrics}}, seeds)."""
    if out_tag == tag:
        raise SerError(f"--out-tag '{out_tag}' is the member experiment")
    members, seeds = ensemble_members(exp_dir, tag, seeds)
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
                    extra={"ensemble_seeds": seeds})
        if not scored:
            raise SerError(f"experiment '{tag}': no test condition is scored by every seed of a fold: "
                           f"run stage 4 for every seed")
        tag_yaml = {"setting": setting_label(seeds), "ensemble_of": tag, "ensemble_seeds": seeds}
        atomic_write_text(os.path.join(tmp, "tag.yaml"), yaml.safe_dump(tag_yaml, sort_keys=False))
    return scored, seeds


def ensemble_source(ensemble_dir):
    """(member tag, seeds) an existing ensemble was made from (its tag.yaml)."""
    path = os.path.join(ensemble_dir, "tag.yaml")
    try:
        with open(path, encoding="utf-8") as f:
            info = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SerError(f"{path}: unreadable ({' '.join(str(e).split())})") from None
    tag, seeds = (info.get("ensemble_of"), info.get("ensemble_seeds")) if isinstance(info, dict) else (None, None)
    if not isinstance(tag, str) or not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise SerError(f"{path}: not an ensemble (needs 'ensemble_of': a tag and 'ensemble_seeds': a list of seeds)")
    return tag, seeds
