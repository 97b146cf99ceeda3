#!/usr/bin/env python3
"""Copy a data directory with optional id prefixes (Kaldi's copy_data_dir.sh); logic in
ser/data/copydir.py."""
import os
import sys

try:
    import ser  # noqa: F401  (in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.data.cli import UsageParser  # noqa: E402
from ser.data.copydir import copy_data_dir  # noqa: E402
from ser.errors import run_main  # noqa: E402

DESCRIPTION = """\
Copies every table of <src-data-dir> to <dest-data-dir>, prefixing utterance ids with
--utt-prefix and speaker ids with --spk-prefix (the values of utt2uniq stay the original ids).
Give both the same prefix to keep utterance ids prefixed by their speaker ids.
e.g.: copy_data_dir.py --utt-prefix sp0.9- --spk-prefix sp0.9- data/train data/train_sp0.9
"""


def main(argv=None):
    p = UsageParser(prog="copy_data_dir.py", description=DESCRIPTION)
    p.add_argument("--utt-prefix", default="", metavar="P", help="prefix of utterance ids")
    p.add_argument("--spk-prefix", default="", metavar="P", help="prefix of speaker ids")
    p.add_argument("src", metavar="<src-data-dir>")
    p.add_argument("dest", metavar="<dest-data-dir>")
    args = p.parse_args(argv)
    utt2spk, unprefixed = copy_data_dir(args.src, args.dest, args.utt_prefix, args.spk_prefix)
    if unprefixed:
        print(f"copy_data_dir.py: warning: {len(unprefixed)} utterance ids of {args.dest} are not "
              f"prefixed by their speaker id (e.g. '{unprefixed[0]}'); give --utt-prefix and "
              f"--spk-prefix the same value", file=sys.stderr)
    print(f"copy_data_dir.py: copied {args.src} to {args.dest} ({len(utt2spk)} utterances)")
    return 0


if __name__ == "__main__":
    run_main(main)
