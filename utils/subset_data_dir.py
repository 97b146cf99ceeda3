#!/usr/bin/env python3
"""Take a subset of a data directory (Kaldi's subset_data_dir.sh); logic in ser/data/subset.py."""
import os
import sys

try:
    import ser  # noqa: F401  (in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.data.cli import UsageParser, positive_int  # noqa: E402
from ser.data.subset import subset_data_dir  # noqa: E402
from ser.errors import run_main  # noqa: E402

DESCRIPTION = """\
Writes into <dest-data-dir> the utterances of <src-data-dir> chosen by one of the options, with
every table (feats.scp too) restricted to them and spk2utt rebuilt. A list file gives one id per
line (only the first word of a line is used, so a utt2spk or spk2utt file also works). An id of
the list that is not in <src-data-dir> is an error.
e.g.: subset_data_dir.py --spk-list conf/test_speakers data/all data/test
"""


def main(argv=None):
    p = UsageParser(prog="subset_data_dir.py", description=DESCRIPTION)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--utt-list", metavar="FILE", help="keep the utterances listed in FILE")
    g.add_argument("--spk-list", metavar="FILE", help="keep the speakers listed in FILE")
    g.add_argument("--first", type=positive_int, metavar="N", help="keep the first N utterances")
    g.add_argument("--last", type=positive_int, metavar="N", help="keep the last N utterances")
    p.add_argument("src", metavar="<src-data-dir>")
    p.add_argument("dest", metavar="<dest-data-dir>")
    args = p.parse_args(argv)
    n = subset_data_dir(args.src, args.dest, utt_list=args.utt_list, spk_list=args.spk_list,
                        first=args.first, last=args.last)
    print(f"subset_data_dir.py: wrote {n} utterances of {args.src} to {args.dest}")
    return 0


if __name__ == "__main__":
    run_main(main)
