"""Write a cross-corpus fold: train on SRC_DATA, validate on a random part of TGT_DATA, test on
the rest (paper 1, section 5.4); or, with --test-fraction, an adaptation fold (paper 2, Figure 4).

    python -m ser.bin.make_cross_corpus_fold --src-data SRC_DATA --tgt-data TGT_DATA
        [--dev-fraction 0.3] [--seed 1] [--classes "anger happiness neutral sadness"] OUT_DIR
    python -m ser.bin.make_cross_corpus_fold --src-data SRC_DATA --tgt-data TGT_DATA
        --test-fraction 0.5 --adapt-fraction F [--adapt-unit speaker|utterance]
        [--src-valid-speakers 1] [--seed 1] [--classes ...] OUT_DIR      (e.g. OUT_DIR = .../adapt0.2)

SRC_DATA and TGT_DATA are data dirs (utt2spk, utt2emo) whose utterance and speaker ids do not
collide (prefix them with the corpus name: utils/copy_data_dir.py --utt-prefix emodb-
--spk-prefix emodb-). Utterances whose label is not in --classes are dropped from both.

Split (default): train = every source utterance; valid = a random, emotion-stratified
--dev-fraction of the target (model selection); test = the rest of the target. Target speakers
may be in both valid and test (the paper's random split); no target speaker is ever in train.

Adaptation (--test-fraction T): test = T of the target (whole speakers chosen to give each class
T of its utterances with --adapt-unit speaker, the default; a stratified random T of the
utterances with --adapt-unit utterance); train = the source minus --src-valid-speakers random
source speakers, plus --adapt-fraction F of the target corpus (per class round(F n_c)) drawn
from the rest of the target; valid = those held-out source speakers. The test part does not
depend on F and the added sets are nested in F (same --seed). The added target utterances are
also listed in 1/adapt.list. See ser/eval/cross_corpus.py.

Writes, in the layout of make_folds: OUT_DIR/1/{train.list,valid.list,test.list,info.yaml},
OUT_DIR/classes.txt (the classes, C-sorted) and OUT_DIR/folds.tsv. info.yaml also records the
inputs, the seed, the per-class counts and the dropped labels. Built as OUT_DIR.tmp and renamed;
an unchanged OUT_DIR is left untouched.
"""
import argparse
import os
import sys

from ser.data.fold_dir import write_folds
from ser.data.kvfile import c_sorted
from ser.errors import SerError, run_main
from ser.eval.cross_corpus import make_adaptation_fold, make_cross_corpus_fold
from ser.eval.folds import read_labelled_utts

DEFAULT_CLASSES = "anger happiness neutral sadness"
DEFAULT_DEV_FRACTION = 0.3


def get_parser():
    p = argparse.ArgumentParser(prog="make_cross_corpus_fold", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src-data", required=True, help="source (training) data dir with utt2spk, utt2emo")
    p.add_argument("--tgt-data", required=True, help="target (validation + test) data dir with utt2spk, utt2emo")
    p.add_argument("--dev-fraction", type=float, default=None,
                   help=f"split: fraction of each target class used for validation (default {DEFAULT_DEV_FRACTION})")
    p.add_argument("--seed", type=int, default=1, help="seed of the random target split (default 1)")
    p.add_argument("--classes", default=DEFAULT_CLASSES,
                   help=f"white-space separated common labels (default: '{DEFAULT_CLASSES}')")
    a = p.add_argument_group("adaptation (paper 2, Figure 4)")
    a.add_argument("--test-fraction", type=float, default=None,
                   help="make an adaptation fold whose test set is this fraction of the target (e.g. 0.5)")
    a.add_argument("--adapt-fraction", type=float, default=None,
                   help="fraction of the target corpus added to the training data (0 .. 1 - test fraction; default 0)")
    a.add_argument("--adapt-unit", choices=("speaker", "utterance"), default=None,
                   help="what the test part is drawn by (default speaker: no test speaker in training)")
    a.add_argument("--src-valid-speakers", type=int, default=None,
                   help="source speakers held out for model selection (default 1)")
    p.add_argument("out_dir", help="output folds directory (fold 1)")
    return p


def _split(args, src, tgt, classes):
    fold = make_cross_corpus_fold(src, tgt, classes, args.dev_fraction, args.seed,
                                  src_name=args.src_data, tgt_name=args.tgt_data)
    layout = {"scheme": "cross_corpus", "valid": "random"}
    info = {"dev_fraction": args.dev_fraction, "seed": args.seed, "classes": classes,
            "speakers_in_valid_and_test": len(set(fold["valid_speakers"]) & set(fold["test_speakers"]))}
    parts = ("train", "valid", "test")
    summary = (f"train {len(fold['train'])} ({args.src_data}), valid {len(fold['valid'])} / "
               f"test {len(fold['test'])} ({args.tgt_data}, seed {args.seed})")
    return fold, layout, info, parts, summary


def _adapt(args, src, tgt, classes):
    fold = make_adaptation_fold(src, tgt, classes, args.test_fraction, args.adapt_fraction, args.seed,
                                args.adapt_unit, args.src_valid_speakers,
                                src_name=args.src_data, tgt_name=args.tgt_data)
    layout = {"scheme": "cross_corpus_adapt", "valid": "source_speakers"}
    train_spk = set(fold["train_speakers"])
    info = {"test_fraction": args.test_fraction, "adapt_fraction": args.adapt_fraction,
            "adapt_unit": args.adapt_unit, "src_valid_speakers": args.src_valid_speakers,
            "seed": args.seed, "classes": classes, "num_adapt": len(fold["adapt"]),
            "speakers_in_train_and_test": len(train_spk & set(fold["test_speakers"]))}
    parts = ("train_source", "train_target", "valid", "test")
    summary = (f"train {len(fold['train'])} = {len(fold['train']) - len(fold['adapt'])} ({args.src_data}) + "
               f"{len(fold['adapt'])} ({args.adapt_fraction:g} of {args.tgt_data}), valid {len(fold['valid'])} "
               f"(source speakers {' '.join(fold['valid_speakers'])}), test {len(fold['test'])} "
               f"({args.test_fraction:g} of the target by {args.adapt_unit}, seed {args.seed})")
    return fold, layout, info, parts, summary


def main(argv=None):
    args = get_parser().parse_args(argv)
    adapt = args.test_fraction is not None
    if adapt and args.dev_fraction is not None:
        raise SerError("--dev-fraction (the 30/70 split) and --test-fraction (adaptation) exclude each other")
    if not adapt:
        given = [o for o, v in (("--adapt-fraction", args.adapt_fraction), ("--adapt-unit", args.adapt_unit),
                                ("--src-valid-speakers", args.src_valid_speakers)) if v is not None]
        if given:
            raise SerError(f"{given[0]} needs --test-fraction (an adaptation fold)")
        args.dev_fraction = DEFAULT_DEV_FRACTION if args.dev_fraction is None else args.dev_fraction
    else:
        args.adapt_fraction = 0.0 if args.adapt_fraction is None else args.adapt_fraction
        args.adapt_unit = args.adapt_unit or "speaker"
        args.src_valid_speakers = 1 if args.src_valid_speakers is None else args.src_valid_speakers
    src = read_labelled_utts(args.src_data)
    tgt = read_labelled_utts(args.tgt_data)
    given = args.classes.split()
    classes = c_sorted(set(given))
    if len(classes) != len(given) or not classes:
        raise SerError(f"--classes '{args.classes}': give each class once")
    fold, layout, extra, parts, summary = (_adapt if adapt else _split)(args, src, tgt, classes)
    info = {"src_data": os.path.normpath(args.src_data), "tgt_data": os.path.normpath(args.tgt_data), **extra,
            "counts": fold["counts"], "dropped": fold["dropped"]}
    changed = write_folds(args.out_dir, [fold], classes, info=info, **layout)
    state = "wrote" if changed else "unchanged:"
    print(f"make_cross_corpus_fold: {state} {os.path.normpath(args.out_dir)}: {summary}, "
          f"classes {' '.join(classes)}")
    for part in parts:
        print(f"  {part}: " + " ".join(f"{c} {n}" for c, n in fold["counts"][part].items()))
    for side in ("source", "target"):
        if fold["dropped"][side]:
            print(f"  dropped from the {side}: " + " ".join(f"{c} {n}" for c, n in fold["dropped"][side].items()))
    if adapt and info["speakers_in_train_and_test"]:
        print(f"make_cross_corpus_fold: warning: {info['speakers_in_train_and_test']} test speakers have "
              f"utterances in train.list (--adapt-unit utterance); ser.bin.train refuses such a fold "
              f"(no training utterance of a valid/test speaker)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
