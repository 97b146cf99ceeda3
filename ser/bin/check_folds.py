"""Check folds for speaker leaks and augmentation leaks.

    python -m ser.bin.check_folds FOLDS_DIR [--data DATA_DIR] [--aug-dirs "DIR1 DIR2 ..."]

For every fold: train/valid/test are disjoint, test.list (valid.list) holds only the fold's test
(validation) speaker, no test or validation speaker's utterance is in train.list, and no
augmented copy of a test/validation utterance or speaker is used for training. Exits 1 with a
one-line message naming the fold, the file and the utterance at the first problem.
"""
import argparse

from ser.errors import run_main
from ser.data.fold_check import check_folds


def get_parser():
    p = argparse.ArgumentParser(prog="check_folds", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folds_dir", help="folds directory written by make_folds")
    p.add_argument("--data", default=None, help="data dir the folds were made from (utt2spk)")
    p.add_argument("--aug-dirs", default="", help="space-separated augmented data dirs (utt2spk, utt2uniq)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    n = check_folds(args.folds_dir, data_dir=args.data, aug_dirs=args.aug_dirs.split())
    print(f"check_folds: {args.folds_dir}: {n} folds OK")
    return 0


if __name__ == "__main__":
    run_main(main)
