"""Copy an experiment's scores (no models) to a tree that the report and ensemble_seeds read like exp/.

    python -m ser.bin.archive_scores --exp-dir exp/all --out results/NAME/scores [--seeds "1 2"] TAG [TAG ...]

writes results/NAME/scores/<corpus>/exp/<set>/TAG/fold.<k>/seed<s>/ with each run's config.yaml,
history.tsv, train.log, done and per test condition predictions.tsv and metrics.json, the job
logs under TAG/log/, and the fold and feature files the report reads under
results/NAME/scores/<corpus>/data/ (about 30 KB a run; no models or checkpoints). Only finished
runs are copied (give --seeds to leave out unfinished ones); re-running replaces a tag's copy.
Then, on any machine:

    python -m ser.bin.report --exp-dir results/NAME/scores/<corpus>/exp/<set> --out ...
    python -m ser.bin.ensemble_seeds --exp-dir results/NAME/scores/<corpus>/exp/<set> --out-tag ... TAG

See ser.eval.score_archive.
"""
import argparse
import os

from ser.bin.ensemble_seeds import parse_seeds
from ser.errors import run_main
from ser.eval.score_archive import archive_scores


def get_parser():
    p = argparse.ArgumentParser(prog="archive_scores", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="the recipe's experiment dir holding TAG (egs/<corpus>/exp/<set>)")
    p.add_argument("--out", required=True, help="archive root, e.g. results/NAME/scores")
    p.add_argument("--seeds", help="copy only these seeds' runs, e.g. '1 2' (default: every seed)")
    p.add_argument("tags", nargs="+", metavar="TAG", help="experiment tag(s) to copy")
    return p


def _size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main(argv=None):
    args = get_parser().parse_args(argv)
    seeds = parse_seeds(args.seeds) if args.seeds else None
    counts, archive_exp = archive_scores(args.exp_dir, args.tags, args.out, seeds)
    for tag, (runs, scored) in counts.items():
        print(f"archive_scores: {tag}: {runs} runs, {scored} scored test conditions, "
              f"{_size(os.path.join(archive_exp, tag)) / 1024:.0f} KiB -> {os.path.join(archive_exp, tag)}")
    return 0


if __name__ == "__main__":
    run_main(main)
