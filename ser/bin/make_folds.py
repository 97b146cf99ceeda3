"""Write speaker-independent cross-validation folds of a data dir.

    python -m ser.bin.make_folds --scheme loso [--valid pair|next|none]
        [--pairs "03:08,09:10,..." | --pairs-file conf/folds.yaml] DATA_DIR OUT_DIR
    python -m ser.bin.make_folds --conf conf/folds.yaml DATA_DIR OUT_DIR

--conf reads the recipe's folds config: a `pairs:` list gives leave-one-speaker-out folds with
the pair partner validating; a `groups:` list gives one fold per group of test speakers with
its validation speakers (ser.eval.folds).

Writes OUT_DIR/1..N/{train.list,valid.list,test.list,info.yaml}, OUT_DIR/classes.txt (sorted
unique labels of DATA_DIR/utt2emo: the class order of every model) and OUT_DIR/folds.tsv.
The directory is built as OUT_DIR.tmp and renamed into place; the same inputs give identical
files (and an unchanged OUT_DIR is left untouched).
"""
import argparse

from ser.data.fold_dir import write_folds
from ser.data.kvfile import c_sorted
from ser.errors import SerError, run_main
from ser.eval.folds import (VALID_METHODS, fold_summary, folds_scheme, make_group_folds, make_loso_folds,
                            parse_pairs, read_groups_file, read_labelled_utts, read_pairs_file)


def get_parser():
    p = argparse.ArgumentParser(prog="make_folds", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scheme", default="loso", choices=["loso", "groups"],
                   help="fold scheme: loso = leave one speaker out (default); groups: from --conf")
    p.add_argument("--valid", default="pair", choices=VALID_METHODS,
                   help="validation speaker: the pair partner, the next speaker, or none (default: pair)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--pairs", help="speaker pairs for --valid pair, e.g. '03:08,09:10'")
    g.add_argument("--pairs-file", help="YAML file with a 'pairs' list of 'spkA:spkB' strings")
    g.add_argument("--conf", help="folds config (YAML) with a 'pairs' or a 'groups' list; sets --scheme")
    p.add_argument("data_dir", help="data dir with utt2spk and utt2emo")
    p.add_argument("out_dir", help="output folds directory")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if (args.pairs or args.pairs_file) and args.valid != "pair":
        raise SerError("--pairs/--pairs-file only apply to --valid pair")
    utt2spk, utt2emo = read_labelled_utts(args.data_dir)
    pairs, source = None, "pairs"
    if args.conf:
        args.scheme = folds_scheme(args.conf)
        if args.scheme == "loso":
            args.pairs_file = args.conf
    elif args.scheme == "groups":
        raise SerError("--scheme groups takes its folds from --conf")
    if args.scheme == "groups":
        folds = make_group_folds(utt2spk, read_groups_file(args.conf), args.conf)
        args.valid = "groups"
    elif args.pairs:
        pairs, source = parse_pairs(args.pairs), "--pairs"
    if args.scheme == "loso":
        if args.pairs_file:
            pairs, source = read_pairs_file(args.pairs_file), args.pairs_file
        folds = make_loso_folds(utt2spk, valid=args.valid, pairs=pairs, pairs_source=source)
    classes = c_sorted(set(utt2emo.values()))
    changed = write_folds(args.out_dir, folds, classes, scheme=args.scheme, valid=args.valid)
    print(fold_summary("make_folds", changed, folds, f"{args.scheme} folds", len(classes), args.out_dir))
    return 0


if __name__ == "__main__":
    run_main(main)
