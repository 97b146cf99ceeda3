#!/usr/bin/env python3
"""Split a data directory into N parts for parallel jobs (Kaldi's split_data.sh); logic in
ser/data/split.py."""
import os
import sys

try:
    import ser  # noqa: F401  (in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.data.cli import UsageParser, positive_int  # noqa: E402
from ser.data.split import split_data_dir  # noqa: E402
from ser.errors import run_main  # noqa: E402

DESCRIPTION = """\
Creates <data-dir>/splitN/1 .. <data-dir>/splitN/N, each a data dir; whole speakers go to one
part, parts are contiguous in sorted order and as even as possible in utterances. With --per-utt
utterances are split instead and the parts are in <data-dir>/splitNutt/ (as in Kaldi). Nothing
is done when the split is newer than every table of <data-dir>.
e.g.: split_data.py data/train 4   # then use data/train/split4/JOB with run.py JOB=1:4
"""


def main(argv=None):
    p = UsageParser(prog="split_data.py", description=DESCRIPTION)
    p.add_argument("--per-utt", action="store_true",
                   help="split by utterance (into <data-dir>/splitNutt), not by speaker")
    p.add_argument("data_dir", metavar="<data-dir>")
    p.add_argument("num_parts", type=positive_int, metavar="<num-parts>")
    args = p.parse_args(argv)
    split_dir, written = split_data_dir(args.data_dir, args.num_parts, per_utt=args.per_utt)
    if not written:
        print(f"split_data.py: {split_dir} is up to date")
    return 0


if __name__ == "__main__":
    run_main(main)
