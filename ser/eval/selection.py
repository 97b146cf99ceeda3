"""Per-fold choice between training settings by validation UAR (nested selection).

Under leave-one-speaker-out every speaker is a test speaker somewhere, so a setting chosen once
for the whole table from the folds' validation scores has seen, through those validation
speakers, speakers that other folds test on. Choosing per fold keeps each fold honest: fold k
takes, among the candidate experiments, the run with the best validation UAR on fold k's own
validation speakers (ser.eval.fit: the selected epoch's score), and its test scores are reported
as they are. Ties go to the earlier candidate, so list the simpler setting first.

One validation speaker is a noisy judge. The pooled rule (`rule="pooled"`) lets fold k take the
candidate with the best mean validation UAR over every fold x seed run whose validation speakers
do not include fold k's test speakers (its own runs among them): many speakers judge, and none of
them is one fold k tests on. Those runs trained on fold k's test speakers, as every
leave-one-speaker-out run but fold k's does; their validation scores say nothing of how fold k's
test speakers are recognised.

The choice is written as an experiment tag the report reads like any other:

    <exp>/<out_tag>/fold.<k>/seed<s>/<entry> -> the chosen run's entry (relative symlinks): its
        training outputs, and the test conditions every candidate has scored in that fold (so no
        condition is reported from a choice the other candidates could not compete in)
    <exp>/<out_tag>/selection.tsv    fold, seed, every candidate's validation UAR (and, pooled, the
        means the choice compared), the chosen tag
    <exp>/<out_tag>/tag.yaml         the row's name, the rule, and the config keys (training data
        included) the candidates differ in
"""
import os

import yaml

from ser.data.atomic import atomic_write_text, building_dir
from ser.data.fold_dir import info_speakers, read_info
from ser.errors import SerError
from ser.eval.aggregate import is_scored, resolve_path, run_config, setting_config, tag_run_dirs
from ser.eval.config_diff import config_differences
from ser.eval.fit import run_fit
from ser.runtime.config import read_yaml


SETTING = "chosen per fold on validation UAR"   # the report row's label names it
POOLED_SETTING = "chosen per fold on pooled validation UAR, its test speakers left out"
RULES = {"fold": SETTING, "pooled": POOLED_SETTING}


def _finished_runs(exp_dir, tag):
    """{(fold, seed): run_dir} of a tag's finished trainings (those with `done`)."""
    base = os.path.join(exp_dir, tag)
    if not os.path.isdir(base):
        raise SerError(f"candidate '{tag}': no directory {base}")
    runs = {(fold, seed): d for fold, seed, d in tag_run_dirs(exp_dir, tag)
            if os.path.exists(os.path.join(d, "done"))}
    if not runs:
        raise SerError(f"candidate '{tag}': no finished training under {base} (fold.<k>/seed<s>/done)")
    return runs


def _fold_dir(run_dir):
    cfg = run_config(run_dir)
    if cfg is None:
        raise SerError(f"{run_dir}: no config.yaml")
    return (cfg.get("data") or {}).get("fold_dir")


def select_per_fold(exp_dir, candidates, seeds=None, rule="fold"):
    """[(fold, seed, [valid UAR per candidate], chosen index, [run dir per candidate], [what the
    choice compared per candidate])], sorted.

    rule "fold": each fold x seed takes the candidate with its own best validation UAR; "pooled":
    the best mean over the runs whose validation speakers are none of the fold's test speakers (see
    the module docstring). Every candidate must have finished the same folds x seeds on the same
    fold dirs; `seeds` (a list) keeps those seeds' runs only, e.g. when one candidate has since been
    trained with more."""
    if rule not in RULES:
        raise SerError(f"unknown selection rule '{rule}' (one of: {', '.join(RULES)})")
    if len(candidates) < 2 or len(set(candidates)) != len(candidates):
        raise SerError(f"give at least two distinct candidate tags, not {' '.join(candidates) or 'none'}")
    runs = [_finished_runs(exp_dir, t) for t in candidates]
    if seeds:
        runs = [{key: d for key, d in r.items() if key[1] in seeds} for r in runs]
        for tag, r in zip(candidates, runs):
            if not r:
                raise SerError(f"candidate '{tag}': no finished training of seed(s) {' '.join(map(str, seeds))}")
    for tag, r in zip(candidates[1:], runs[1:]):
        if set(r) != set(runs[0]):
            only = sorted(set(r) ^ set(runs[0]))
            k, s = only[0]
            raise SerError(f"candidates '{candidates[0]}' and '{tag}' did not finish the same runs: "
                           f"fold {k} seed {s} is finished in only one of them")
    keys = sorted(runs[0])
    scores, fold_dirs = {}, {}
    for key in keys:
        dirs = [r[key] for r in runs]
        used = {_fold_dir(d) for d in dirs}
        if len(used) != 1:
            raise SerError(f"fold {key[0]} seed {key[1]}: the candidates trained on different fold dirs "
                           f"({', '.join(sorted(map(str, used)))})")
        fold_dirs[key[0]] = used.pop()
        scores[key] = []
        for d in dirs:
            fit = run_fit(d)
            if fit is None:
                raise SerError(f"{d}: no validation UAR in history.tsv (a run without validation data "
                               f"cannot take part in a selection)")
            scores[key].append(fit["valid_uar"])
    basis = dict(scores) if rule == "fold" else _pooled_scores(exp_dir, scores, fold_dirs)
    rows = []
    for key in keys:
        b = basis[key]
        chosen = max(range(len(b)), key=lambda i: (b[i], -i))
        rows.append((key[0], key[1], scores[key], chosen, [r[key] for r in runs], b))
    return rows


def _fold_speakers(exp_dir, fold_dir, key):
    if not fold_dir:
        raise SerError("a pooled selection needs each run's fold dir (config.yaml data.fold_dir)")
    path = resolve_path(str(fold_dir), exp_dir)
    spks = set(info_speakers(read_info(path), key))
    if not spks:
        raise SerError(f"{os.path.join(path, 'info.yaml')}: no {key} (a pooled selection needs them)")
    return spks


def _pooled_scores(exp_dir, scores, fold_dirs):
    """{(fold, seed): [mean validation UAR per candidate over the runs whose validation speakers are
    none of that fold's test speakers]}."""
    test = {k: _fold_speakers(exp_dir, d, "test_speakers") for k, d in fold_dirs.items()}
    valid = {k: _fold_speakers(exp_dir, d, "valid_speakers") for k, d in fold_dirs.items()}
    means = {}
    for fold in fold_dirs:
        pool = [key for key in scores if not valid[key[0]] & test[fold]]
        if not pool:
            raise SerError(f"fold {fold}: every run validates on one of its test speakers "
                           f"({' '.join(sorted(test[fold]))}): nothing to pool")
        means[fold] = [sum(scores[key][i] for key in pool) / len(pool) for i in range(len(scores[pool[0]]))]
    return {key: means[key[0]] for key in scores}


def _link_run(dirs, chosen, build_dir, final_dir):
    """build_dir (to become final_dir) with relative links to the chosen run's entries, test
    conditions only where every candidate run has scored them."""
    os.makedirs(build_dir)
    src = dirs[chosen]
    for name in sorted(os.listdir(src)):
        if os.path.exists(os.path.join(src, name, "metrics.json")) and not all(
                is_scored(os.path.join(d, name)) for d in dirs):
            continue
        target = os.path.relpath(os.path.abspath(os.path.join(src, name)), os.path.abspath(final_dir))
        os.symlink(target, os.path.join(build_dir, name))


def selection_candidates(selection_dir):
    """The candidate tags an existing selection was made from, and its rule (its tag.yaml)."""
    path = os.path.join(selection_dir, "tag.yaml")
    if not os.path.exists(os.path.join(selection_dir, "selection.tsv")):
        raise SerError(f"{selection_dir}: not a selection (no selection.tsv)")
    try:
        data = read_yaml(path) or {}
        tags, rule = data.get("selected_from"), data.get("rule", "fold")
    except (OSError, AttributeError) as e:
        raise SerError(f"{path}: unreadable ({' '.join(str(e).split())})") from None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SerError(f"{path}: 'selected_from' is not a list of experiment tags")
    if rule not in RULES:
        raise SerError(f"{path}: unknown rule '{rule}' (one of: {', '.join(RULES)})")
    return tags, rule


def candidate_differences(exp_dir, rows):
    """The config keys the candidates of select_per_fold's `rows` differ in, with their values.

    A selection row has no augmentation label of its own, so the candidates' training data count
    here; the diffusion models behind synthetic data only where every candidate has some (else
    the augmentation already tells them apart)."""
    configs = [run_config(d) or {} for d in rows[0][4]]
    with_source = [setting_config(c, exp_dir) for c in configs]
    if all("diffusion" in c for c in with_source):
        configs = with_source
    return config_differences(configs, keep=("augmentation",))


def write_selection(exp_dir, candidates, out_tag, rule="fold"):
    """Write <exp_dir>/<out_tag> (see the module docstring), replacing an older one; the rows."""
    if out_tag in candidates:
        raise SerError(f"--out-tag '{out_tag}' is one of the candidates")
    rows = select_per_fold(exp_dir, candidates, rule=rule)
    diffs = candidate_differences(exp_dir, rows)
    out = os.path.join(exp_dir, out_tag)
    if os.path.exists(out) and not os.path.exists(os.path.join(out, "selection.tsv")):
        raise SerError(f"{out} exists and is not a selection (no selection.tsv): choose another --out-tag")
    with building_dir(out) as tmp:
        for fold, seed, _, chosen, dirs, _ in rows:
            _link_run(dirs, chosen, os.path.join(tmp, f"fold.{fold}", f"seed{seed}"),
                      os.path.join(out, f"fold.{fold}", f"seed{seed}"))
        pooled = [f"pooled_valid_uar:{t}" for t in candidates] if rule == "pooled" else []
        header = ["fold", "seed"] + [f"valid_uar:{t}" for t in candidates] + pooled + ["chosen"]
        lines = ["\t".join(header)] + [
            "\t".join([str(f), str(s)] + [f"{v:.4f}" for v in sc + (b if pooled else [])] + [candidates[c]])
            for f, s, sc, c, _, b in rows]
        atomic_write_text(os.path.join(tmp, "selection.tsv"), "\n".join(lines) + "\n")
        tag_yaml = {"setting": RULES[rule], "rule": rule, "selected_from": list(candidates),
                    "differences": dict(diffs)}
        atomic_write_text(os.path.join(tmp, "tag.yaml"), yaml.safe_dump(tag_yaml, sort_keys=False))
    return rows, diffs
