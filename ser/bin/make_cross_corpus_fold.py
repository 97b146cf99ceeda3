"""Write a cross-corpus fold: train on SRC_DATA, validate on a random part of TGT_DATA, test on
the rest (paper 1, section 5.4).

    python -m ser.bin.make_cross_corpus_fold --src-data SRC_DATA --tgt-data TGT_DATA
        [--dev-fraction 0.3] [--seed 1] [--classes "anger happiness neutral sadness"] OUT_DIR

SRC_DATA and TGT_DATA are data dirs (utt2spk, utt2emo) whose utterance and speaker ids do not
collide (prefix them with the corpus name: utils/copy_data_dir.py --utt-prefix emodb-
--spk-prefix emodb-). Utterances whose label is not in --classes are dropped from both.
train = every source utterance; valid = a random, emotion-stratified --dev-fraction of the
target (model selection); test = the rest of the target. Target speakers may be in both valid
and test (the paper's random split); no target speaker is ever in train.

Writes, in the layout of make_folds: OUT_DIR/1/{train.list,valid.list,test.list,info.yaml},
OUT_DIR/classes.txt (the classes, C-sorted) and OUT_DIR/folds.tsv. info.yaml also records the
inputs, the seed, the per-class counts and the dropped labels. Built as OUT_DIR.tmp and renamed;
an unchanged OUT_DIR is left untouched.
"""
import argparse
import os

import yaml

from ser.data.kvfile import c_sorted
from ser.errors import run_main
from ser.eval.cross_corpus import make_cross_corpus_fold
from ser.eval.folds import _QuotingDumper, fold_files, read_labelled_utts, write_tree

DEFAULT_CLASSES = "anger happiness neutral sadness"


def get_parser():
    p = argparse.ArgumentParser(prog="make_cross_corpus_fold", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src-data", required=True, help="source (training) data dir with utt2spk, utt2emo")
    p.add_argument("--tgt-data", required=True, help="target (validation + test) data dir with utt2spk, utt2emo")
    p.add_argument("--dev-fraction", type=float, default=0.3,
                   help="fraction of each target class used for validation (default 0.3)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random target split (default 1)")
    p.add_argument("--classes", default=DEFAULT_CLASSES,
                   help=f"white-space separated common labels (default: '{DEFAULT_CLASSES}')")
    p.add_argument("out_dir", help="output folds directory (fold 1)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    src = read_labelled_utts(args.src_data)
    tgt = read_labelled_utts(args.tgt_data)
    fold = make_cross_corpus_fold(src, tgt, args.classes.split(), args.dev_fraction, args.seed,
                                  src_name=args.src_data, tgt_name=args.tgt_data)
    classes = c_sorted(set(args.classes.split()))
    files = fold_files([fold], classes, scheme="cross_corpus", valid="random")
    info = yaml.safe_load(files["1/info.yaml"])
    shared = sorted(set(fold["valid_speakers"]) & set(fold["test_speakers"]))
    info.update({
        "src_data": os.path.normpath(args.src_data), "tgt_data": os.path.normpath(args.tgt_data),
        "dev_fraction": args.dev_fraction, "seed": args.seed, "classes": classes,
        "speakers_in_valid_and_test": len(shared),
        "counts": fold["counts"], "dropped": fold["dropped"],
    })
    files["1/info.yaml"] = yaml.dump(info, Dumper=_QuotingDumper, sort_keys=False, default_flow_style=None)
    changed = write_tree(args.out_dir, files)
    state = "wrote" if changed else "unchanged:"
    print(f"make_cross_corpus_fold: {state} {os.path.normpath(args.out_dir)}: "
          f"train {len(fold['train'])} ({args.src_data}), valid {len(fold['valid'])} / "
          f"test {len(fold['test'])} ({args.tgt_data}, seed {args.seed}), classes {' '.join(classes)}")
    for part in ("train", "valid", "test"):
        print(f"  {part}: " + " ".join(f"{c} {n}" for c, n in fold["counts"][part].items()))
    for side in ("source", "target"):
        if fold["dropped"][side]:
            print(f"  dropped from the {side}: " + " ".join(f"{c} {n}" for c, n in fold["dropped"][side].items()))
    return 0


if __name__ == "__main__":
    run_main(main)
