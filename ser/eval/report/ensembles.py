"""'## Ensembles against their members': what averaging posteriors (ser.bin.ensemble_seeds) buys, per
test speaker. A fold's members' UAR is the mean over the member runs (every seed of every member
experiment, the ensemble's equal weights); the gain is paired over the folds, because the spread
between test speakers dwarfs the difference between an ensemble and its members."""
import os

import numpy as np

from ser.eval.paired import paired_difference, paired_text
from ser.eval.report.markdown import pct, table
from ser.eval.seed_ensemble import ensemble_source


def members_fold_uar(member_summaries, seeds):
    """fold -> mean UAR over the member runs (each member summary's runs of `seeds`), for the folds
    where every member has every seed."""
    per_fold = {}
    for s in member_summaries:
        runs = {(r.fold, r.seed): r for r in s.all_runs if r.seed in seeds}
        for fold in s.folds:
            if all((fold, seed) in runs for seed in seeds):
                per_fold.setdefault(fold, []).extend(float(runs[(fold, seed)].metrics["uar"]) for seed in seeds)
    wanted = len(member_summaries) * len(seeds)
    return {f: float(np.mean(v)) for f, v in per_fold.items() if len(v) == wanted}


def ensemble_section(layout):
    rows = []
    for t in layout.tags:
        if "ensemble_of" not in layout.tag_desc[t]:
            continue
        for c, cond in layout.columns:
            ens = layout.by_key.get((c, t, cond))
            if ens is None:
                continue
            members, seeds = ensemble_source(os.path.join(ens.all_runs[0].exp, t))
            member_summaries = [layout.by_key.get((c, m, cond)) for m in members]
            if None in member_summaries:   # a member left out of this report
                continue
            base = members_fold_uar(member_summaries, set(seeds))
            diff = paired_difference(ens.fold_uar, base)
            if diff is None:
                continue
            common = sorted(set(ens.fold_uar) & set(base))
            rows.append([layout.labels[t], f"{c} {cond}", f"{len(members) * len(seeds)}",
                         pct(np.mean([base[f] for f in common]), layout.digits),
                         pct(np.mean([ens.fold_uar[f] for f in common]), layout.digits),
                         paired_text(diff, digits=layout.digits)])
    if not rows:
        return []
    return ["## Ensembles against their members", "",
            "Each mean-posterior ensemble against its member runs, per test fold: the members' UAR (%) is "
            "the mean over the member runs (every seed of every member experiment, their weights in the "
            "ensemble); the gain is the ensemble's UAR minus it, mean ± standard error over the folds.", ""] + \
        table(["Ensemble", "column", "member runs", "members' mean UAR", "ensemble UAR", "gain per fold (points)"],
              rows) + [""]
