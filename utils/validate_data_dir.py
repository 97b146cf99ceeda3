#!/usr/bin/env python3
"""Check a data directory (Kaldi's validate_data_dir.sh); the checks are in ser/data/validate.py."""
import os
import sys

try:
    import ser  # noqa: F401  (in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.data.cli import UsageParser  # noqa: E402
from ser.data.validate import validate_data_dir  # noqa: E402
from ser.errors import run_main  # noqa: E402

DESCRIPTION = """\
Checks a data directory: required files utt2spk, spk2utt, utt2emo and wav.scp (unless --no-wav
or feats.scp is there); every table sorted (LC_ALL=C) without duplicate keys; every per-utterance
table (wav.scp, text, feats.scp, utt2*) has exactly the utterances of utt2spk, every per-speaker
table (spk2*, cmvn.scp) exactly its speakers; spk2utt matches utt2spk; utterance ids start with
their speaker id; utt2dur values are positive numbers; the first and last matrices of feats.scp
(all with --full) are readable and of one dimension; with --classes, every utt2emo label is one
of them.
Prints the first problem as 'file:line: message' and exits 1.
e.g.: validate_data_dir.py --no-feats data/train
"""


def main(argv=None):
    p = UsageParser(prog="validate_data_dir.py", description=DESCRIPTION)
    p.add_argument("--no-feats", action="store_true", help="do not check feats.scp")
    p.add_argument("--no-text", action="store_true", help="do not check text")
    p.add_argument("--no-wav", action="store_true", help="wav.scp is neither required nor checked")
    p.add_argument("--full", "--full-feats-check", dest="full_feats_check", action="store_true",
                   help="read every matrix of feats.scp, not only the first and last")
    p.add_argument("--classes", default=None,
                   help="the allowed utt2emo labels, space-separated (e.g. a recipe's classes)")
    p.add_argument("data_dir", metavar="<data-dir>")
    args = p.parse_args(argv)
    validate_data_dir(args.data_dir, no_feats=args.no_feats, no_text=args.no_text,
                      no_wav=args.no_wav, feats_check="full" if args.full_feats_check else "ends",
                      classes=args.classes.split() if args.classes is not None else None)
    print(f"validate_data_dir.py: Successfully validated data-directory "
          f"{args.data_dir.rstrip('/') or '/'}")
    return 0


if __name__ == "__main__":
    run_main(main)
