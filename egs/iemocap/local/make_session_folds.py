#!/usr/bin/env python3
"""Leave-one-session-out folds of an IEMOCAP data dir (the alternative to run.sh's stage 2).

    local/make_session_folds.py [--valid next|none] DATA_DIR OUT_DIR

Fold k tests on both speakers of the k-th session (Ses0kF, Ses0kM), validates on both speakers
of the next session (cyclic: session 5 validates on session 1) and trains on the other three
sessions, so that test and validation sets are each one whole dyad (one female, one male actor)
and the training set keeps 3 female + 3 male actors. --valid none: no validation speakers,
training on the other four sessions.

Writes the layout of ser.bin.make_folds: OUT_DIR/1..N/{train,valid,test}.list, info.yaml,
OUT_DIR/classes.txt and OUT_DIR/folds.tsv, built as OUT_DIR.tmp and renamed (an unchanged
OUT_DIR is left untouched). Use it instead of stage 2:
    ./run.sh --stop_stage 1 --four_class true
    local/make_session_folds.py data/all4 data/all4_folds
    ./run.sh --stage 3 --four_class true
"""
import argparse
import re

from ser.data.fold_dir import write_folds
from ser.data.kvfile import c_sorted
from ser.errors import SerError, run_main
from ser.eval.folds import fold_summary, read_labelled_utts, speaker_fold, speaker_utts

SPEAKER = re.compile(r"^Ses(\d\d)[FM]$")


def session_of(spk):
    m = SPEAKER.match(spk)
    if not m:
        raise SerError(f"speaker '{spk}' is not an IEMOCAP speaker id (Ses01F, Ses01M, ...)")
    return m.group(1)


def make_session_folds(utt2spk, valid="next"):
    """Fold dicts (ser.eval.folds.speaker_fold) for leave-one-session-out."""
    spk2utts = speaker_utts(utt2spk)
    sessions = {}
    for spk in c_sorted(spk2utts):
        sessions.setdefault(session_of(spk), []).append(spk)
    order = sorted(sessions)
    if len(order) < (3 if valid == "next" else 2):
        raise SerError(f"leave-one-session-out needs more sessions than {len(order)} ({' '.join(order)})")
    folds = []
    for k, ses in enumerate(order):
        test_spks = sessions[ses]
        valid_spks = sessions[order[(k + 1) % len(order)]] if valid == "next" else []
        train_spks = [s for s in c_sorted(spk2utts) if s not in test_spks and s not in valid_spks]
        folds.append(speaker_fold(k + 1, test_spks, valid_spks, train_spks, spk2utts))
    return folds


def main(argv=None):
    p = argparse.ArgumentParser(prog="make_session_folds.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--valid", choices=["next", "none"], default="next",
                   help="validation speakers: both speakers of the next session (default), or none")
    p.add_argument("data_dir", help="data dir with utt2spk and utt2emo")
    p.add_argument("out_dir", help="output folds directory")
    args = p.parse_args(argv)
    utt2spk, utt2emo = read_labelled_utts(args.data_dir)
    folds = make_session_folds(utt2spk, valid=args.valid)
    classes = c_sorted(set(utt2emo.values()))
    changed = write_folds(args.out_dir, folds, classes, scheme="leave_one_session_out",
                          valid="next_session" if args.valid == "next" else "none")
    print(fold_summary("make_session_folds.py", changed, folds, "leave-one-session-out folds", len(classes),
                       args.out_dir))
    return 0


if __name__ == "__main__":
    run_main(main)
