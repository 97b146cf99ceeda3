#!/usr/bin/env python3
"""Combine data directories (Kaldi's combine_data.sh); the logic is in ser/data/combine.py."""
import os
import sys

try:
    import ser  # noqa: F401  (in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.data.cli import UsageParser  # noqa: E402
from ser.data.combine import combine_data_dirs  # noqa: E402
from ser.errors import run_main  # noqa: E402

DESCRIPTION = """\
Writes into <dest-data-dir> the union of the source data dirs: each table present in every
source is concatenated (utt2uniq defaults to utt -> utt for a source without it; other tables
missing from a source are left out, with a warning), sorted (LC_ALL=C), and spk2utt rebuilt.
An utterance id in two sources is an error.
e.g.: combine_data.py data/train_all data/train data/train_sp0.9 data/train_sp1.1
"""


def main(argv=None):
    p = UsageParser(prog="combine_data.py", description=DESCRIPTION)
    p.add_argument("--extra-files", default="", metavar="'F1 F2 ...'",
                   help="more files to combine (space-separated names; must be in every source)")
    p.add_argument("dest", metavar="<dest-data-dir>")
    p.add_argument("srcs", nargs="+", metavar="<src-data-dir>")
    args = p.parse_args(argv)
    warn = lambda msg: print(f"combine_data.py: warning: {msg}", file=sys.stderr)  # noqa: E731
    num_utts, num_spks = combine_data_dirs(args.dest, args.srcs, args.extra_files.split(), warn)
    print(f"combine_data.py: combined {len(args.srcs)} data dirs into {args.dest}: "
          f"{num_utts} utterances, {num_spks} speakers")
    return 0


if __name__ == "__main__":
    run_main(main)
