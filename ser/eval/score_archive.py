"""A slim copy of an experiment's scored runs, to keep with its report.

An exp/ tree holds models and checkpoints and stays on the machine that trained it. What the
report, ser.bin.ensemble_seeds and per-speaker comparisons read is small: each run's config.yaml,
history.tsv (averaged.tsv), train.log, done and job log (<tag>/log/), and per test condition its
predictions.tsv, metrics.json and done. archive_scores copies those, and the data files the
configs name that the report reads (each fold's info.yaml, the folds' classes.txt and folds.tsv,
the features' conf.yaml), into a tree laid out like the recipe:

    <out>/<corpus>/exp/<data set>/<tag>/fold.<k>/seed<s>/...
    <out>/<corpus>/data/...

so that `--exp-dir <out>/<corpus>/exp/<data set>` reads like the recipe's own exp dir on any
machine (a later session can fuse an older experiment's seeds with a new one's, or pair them per
speaker, without training them again). Models, checkpoints and plots are left out.
"""
import os

from ser.data.atomic import atomic_copy, building_dir
from ser.errors import SerError
from ser.eval.aggregate import is_scored, recipe_layout, run_config, sorted_subdirs, tag_run_dirs
from ser.eval.report.environment import job_log

RUN_FILES = ("config.yaml", "history.tsv", "averaged.tsv", "train.log", "done")
SCORE_FILES = ("predictions.tsv", "metrics.json", "done")
TAG_FILES = ("tag.yaml", "config.yaml", "selection.tsv")   # an ensemble's or a selection's own record


def _copy_present(src_dir, dst_dir, names):
    """Copy the files `names` that exist in src_dir; returns how many."""
    n = 0
    for name in names:
        src = os.path.join(src_dir, name)
        if os.path.isfile(src):
            os.makedirs(dst_dir, exist_ok=True)
            atomic_copy(src, os.path.join(dst_dir, name))
            n += 1
    return n


def _data_files(cfg):
    """Recipe-relative paths of the data files a run's config names that the report reads."""
    data = (cfg or {}).get("data") or {}
    out = []
    if data.get("fold_dir"):
        out.append(os.path.join(data["fold_dir"], "info.yaml"))
        out.append(os.path.join(os.path.dirname(os.path.normpath(data["fold_dir"])), "folds.tsv"))
    if data.get("classes"):
        out.append(data["classes"])
    if data.get("feats_dir"):
        out.append(os.path.join(data["feats_dir"], "conf.yaml"))
    # only paths inside the recipe dir are mirrored (not /abs/... or ../<other corpus>/...)
    return [p for p in out if not os.path.isabs(p) and not os.path.normpath(p).startswith(os.pardir)]


def archive_scores(exp_dir, tags, out, seeds=None):
    """Write the slim copy of the experiments `tags` of `exp_dir` under `out` (see the module
    docstring), replacing an earlier copy of each tag. With `seeds`, only those seeds' runs.
    Returns {tag: (runs copied, scored conditions copied)} and the archive's exp dir."""
    recipe, corpus, exp_rel = recipe_layout(exp_dir)
    if recipe is None:
        raise SerError(f"{exp_dir}: not a recipe's experiment dir (no 'exp' component, as in egs/<corpus>/exp/<set>)")
    archive_exp = os.path.join(out, corpus, exp_rel)
    counts = {}
    for tag in tags:
        runs = [(f, s, d) for f, s, d in tag_run_dirs(exp_dir, tag) if seeds is None or s in seeds]
        if not runs:
            which = f" of seed{'s' if len(seeds) > 1 else ''} {' '.join(map(str, seeds))}" if seeds else ""
            raise SerError(f"experiment '{tag}': no runs{which} under {os.path.join(exp_dir, tag)} (fold.<k>/seed<s>)")
        # an ensemble's or a selection's runs trained nothing: their tag.yaml records the members
        derived = os.path.isfile(os.path.join(exp_dir, tag, "tag.yaml"))
        unfinished = [d for _, _, d in runs if not derived and not os.path.exists(os.path.join(d, "done"))]
        if unfinished:
            raise SerError(f"{unfinished[0]}: training not finished (no done): archive finished runs only "
                           f"(give --seeds)")
        data_files = set()
        n_scored = 0
        with building_dir(os.path.join(archive_exp, tag)) as tmp:
            _copy_present(os.path.join(exp_dir, tag), tmp, TAG_FILES)
            for fold, seed, run_dir in runs:
                dst = os.path.join(tmp, f"fold.{fold}", f"seed{seed}")
                _copy_present(run_dir, dst, RUN_FILES)
                # the job log's first line is the training command (threads, config file) the report names
                _copy_present(os.path.join(exp_dir, tag, "log"), os.path.join(tmp, "log"), [job_log(seed, fold)])
                for cond, _ in sorted_subdirs(run_dir):
                    if is_scored(os.path.join(run_dir, cond)):
                        n_scored += _copy_present(os.path.join(run_dir, cond), os.path.join(dst, cond), SCORE_FILES) > 0
                data_files.update(_data_files(run_config(run_dir)))
        for rel in sorted(data_files):
            _copy_present(os.path.join(recipe, os.path.dirname(rel)),
                          os.path.join(out, corpus, os.path.dirname(rel)), [os.path.basename(rel)])
        counts[tag] = (len(runs), n_scored)
    return counts, archive_exp
