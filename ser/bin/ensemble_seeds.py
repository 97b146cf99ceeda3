"""Score the mean posterior of an experiment's seeds (or of several experiments') as an experiment of its own.

    python -m ser.bin.ensemble_seeds --exp-dir EXP --out-tag OUT_TAG [--seeds "1 2 3"] TAG [TAG ...]
    python -m ser.bin.ensemble_seeds --refresh EXP/OUT_TAG

TAG is an experiment trained with several seeds (run.sh --nrepeats N) and scored (stage 4). For
every fold, the utterance posteriors of all its seeds (default: every seed found) are averaged
per test condition and scored; EXP/OUT_TAG is then a one-seed experiment the report shows as a
row of its own ("mean posterior of seeds ..."). With several TAGs (the same folds and seeds, e.g.
one model on two feature types) every seed of every TAG is a member with the same weight: late
fusion (there one seed, --seeds 1, is enough). A TAG that is itself a seed ensemble is one member
(--seeds 1): fusing ensembles weights experiments, not runs, equally. Decide the members before
looking at test scores. See ser.eval.seed_ensemble. Re-running replaces OUT_TAG; --refresh redoes
an ensemble from the tags and seeds its tag.yaml names.
"""
import argparse
import os

from ser.errors import SerError, run_main
from ser.eval.seed_ensemble import ensemble_source, write_seed_ensemble


def get_parser():
    p = argparse.ArgumentParser(prog="ensemble_seeds", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", help="experiment directory holding TAG")
    p.add_argument("--out-tag", help="tag of the ensemble written under --exp-dir")
    p.add_argument("--seeds", help="member seeds, e.g. '1 2 3' (default: every seed of TAG)")
    p.add_argument("--refresh", metavar="DIR", help="redo the ensemble DIR (EXP/OUT_TAG) from its tag.yaml")
    p.add_argument("tags", nargs="*", metavar="TAG", help="experiment tag(s) whose seeds are combined")
    return p


def parse_seeds(text):
    try:
        return [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise SerError(f"--seeds must be seed numbers, e.g. '1 2 3', not '{text}'") from None


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.refresh:
        if args.exp_dir or args.out_tag or args.tags or args.seeds:
            raise SerError("--refresh DIR takes no --exp-dir, --out-tag, --seeds or TAG")
        args.exp_dir, args.out_tag = os.path.split(os.path.normpath(args.refresh))
        args.tags, seeds = ensemble_source(args.refresh)
    elif not (args.exp_dir and args.out_tag and args.tags):
        raise SerError("give --exp-dir, --out-tag and the experiment TAG, or --refresh DIR")
    else:
        seeds = parse_seeds(args.seeds) if args.seeds else None
    scored, seeds = write_seed_ensemble(args.exp_dir, args.tags, args.out_tag, seeds)
    for cond in sorted({c for per_fold in scored.values() for c in per_fold}):
        uars = [m[cond]["uar"] for m in scored.values() if cond in m and m[cond]["uar"] is not None]
        print(f"ensemble_seeds: {' + '.join(args.tags)} seeds {' '.join(map(str, seeds))}, {cond}: mean UAR over "
              f"{len(uars)} folds {100 * sum(uars) / max(len(uars), 1):.1f}")
    print(f"ensemble_seeds: wrote {args.exp_dir}/{args.out_tag}")
    return 0


if __name__ == "__main__":
    run_main(main)
