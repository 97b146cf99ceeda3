#!/usr/bin/env python3
"""Repair a data directory in place (Kaldi's fix_data_dir.sh); the logic is in ser/data/fix.py."""
import os
import sys

try:
    import ser  # noqa: F401  (in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.data.cli import UsageParser  # noqa: E402
from ser.data.fix import fix_data_dir  # noqa: E402
from ser.errors import run_main  # noqa: E402

DESCRIPTION = """\
Keeps only the utterances present in every per-utterance table (utt2spk, wav.scp, text,
feats.scp, utt2*) and whose speaker is in every per-speaker table (spk2*, cmvn.scp); drops lines
without a value and repeated keys; sorts every table (LC_ALL=C) and rebuilds spk2utt. The
original files are copied to <data-dir>/.backup/ first.
e.g.: fix_data_dir.py data/train
"""


def main(argv=None):
    p = UsageParser(prog="fix_data_dir.py", description=DESCRIPTION)
    p.add_argument("data_dir", metavar="<data-dir>")
    args = p.parse_args(argv)
    r = fix_data_dir(args.data_dir)
    bad = f", {r['bad_lines']} bad or repeated lines dropped" if r["bad_lines"] else ""
    print(f"fix_data_dir.py: kept {r['kept']} of {r['kept'] + r['dropped']} utterances "
          f"({r['dropped']} dropped), {r['num_spks']} speakers{bad}; old files in {r['backup']}")
    return 0


if __name__ == "__main__":
    run_main(main)
