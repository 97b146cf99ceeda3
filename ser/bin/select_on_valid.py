"""Choose, per fold, between finished experiments of one model by validation UAR.

    python -m ser.bin.select_on_valid --exp-dir EXP --out-tag TAG [--rule pooled] CANDIDATE_TAG CANDIDATE_TAG [...]
    python -m ser.bin.select_on_valid --exp-dir EXP [--seeds "1 2 3"] CANDIDATE_TAG CANDIDATE_TAG [...]
    python -m ser.bin.select_on_valid --refresh EXP/TAG

Each candidate is an experiment tag under EXP (e.g. the same model trained with and without
regularisation: run.sh --conf_dir with another train_<model>.yaml). For every fold x seed the run
with the best validation UAR of that fold is chosen (ties: the earlier candidate), so a setting
is never chosen on test speakers, and EXP/TAG becomes an experiment the report reads like any
other (fold dirs link to the chosen runs; selection.tsv lists every candidate's validation UAR
and the choice; tag.yaml the config keys the candidates differ in). See ser.eval.selection.
Re-running replaces TAG; --refresh redoes an existing selection from the candidates its tag.yaml
names (run.sh stage 5 refreshes every selection before its report).

--rule pooled: each fold takes the candidate with the best mean validation UAR over all the runs
whose validation speakers are none of the fold's test speakers (many judges instead of one
speaker; still none of them a speaker the fold tests on). The compare-only lines pool over every
run, the fold's own test speakers included: a single setting chosen from them has seen, as
validation speakers, every speaker the table tests; --rule pooled --out-tag gives the honest row.

Without --out-tag nothing is written: the lines printed compare the candidates on validation data
only (their mean validation UAR, each paired against the first), which is how a validation grid
is read (train each candidate with stage 3 alone, run.sh --conf_dir DIR per candidate, and no
test score exists yet); --seeds compares those seeds' runs only (e.g. when one candidate has since
been trained with more seeds).
"""
import argparse
import os
from collections import Counter

from ser.bin.ensemble_seeds import parse_seeds
from ser.errors import SerError, run_main
from ser.eval.config_diff import describe_values
from ser.eval.paired import paired_difference, paired_text
from ser.eval.selection import (RULES, candidate_differences, select_per_fold, selection_candidates,
                                write_selection)


def get_parser():
    p = argparse.ArgumentParser(prog="select_on_valid", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", help="experiment directory holding the candidate tags")
    p.add_argument("--out-tag", help="tag of the selection written under --exp-dir (without it: compare only)")
    p.add_argument("--rule", choices=sorted(RULES), default="fold",
                   help="fold: each fold's own validation UAR (default); pooled: the mean over the runs "
                        "that do not validate on the fold's test speakers")
    p.add_argument("--seeds", type=parse_seeds, help="without --out-tag: compare these seeds' runs only, e.g. '1 2 3'")
    p.add_argument("--refresh", metavar="DIR", help="redo the selection DIR (EXP/TAG) from its tag.yaml")
    p.add_argument("candidates", nargs="*", help="candidate experiment tags (the simpler setting first)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.refresh:
        if args.exp_dir or args.out_tag or args.candidates or args.seeds or args.rule != "fold":
            raise SerError("--refresh DIR takes no --exp-dir, --out-tag, --seeds, --rule or candidate tags")
        args.exp_dir, args.out_tag = os.path.split(os.path.normpath(args.refresh))
        args.candidates, args.rule = selection_candidates(args.refresh)
    elif not args.exp_dir:
        raise SerError("give --exp-dir with the candidate tags (and --out-tag to write the selection), "
                       "or --refresh DIR")
    if args.out_tag:
        if args.seeds:   # a selection is an experiment: every run of its candidates takes part
            raise SerError("--seeds only compares (no --out-tag): a selection takes every seed of its candidates")
        rows, diffs = write_selection(args.exp_dir, args.candidates, args.out_tag, args.rule)
    else:
        rows = select_per_fold(args.exp_dir, args.candidates, args.seeds, args.rule)
        diffs = candidate_differences(args.exp_dir, rows)
    chosen = Counter(row[3] for row in rows)
    valid = [{(k, s): scores[i] for k, s, scores, *_ in rows} for i in range(len(args.candidates))]
    for i, tag in enumerate(args.candidates):
        mean = sum(valid[i].values()) / len(rows)
        setting = describe_values(diffs, i) or "same config"
        against_first = (f"; against {args.candidates[0]}, paired: "
                         f"{paired_text(paired_difference(valid[i], valid[0]))}" if i else "")
        print(f"select_on_valid: {tag} ({setting}): mean valid UAR {100 * mean:.1f}, chosen in "
              f"{chosen[i]} of {len(rows)} runs{against_first}")
    if args.out_tag:
        print(f"select_on_valid: wrote {args.exp_dir}/{args.out_tag}")
    return 0


if __name__ == "__main__":
    run_main(main)
