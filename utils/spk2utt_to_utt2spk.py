#!/usr/bin/env python3
"""spk2utt -> utt2spk filter, as Kaldi's utils/spk2utt_to_utt2spk.pl."""
import os
import sys

try:
    import ser  # noqa: F401  (in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.data.cli import UsageParser, input_lines  # noqa: E402
from ser.errors import SerError, run_main  # noqa: E402

DESCRIPTION = """\
Reads spk2utt lines ('<spk> <utt1> <utt2> ...') from the files, or from stdin, and writes
utt2spk lines ('<utt> <spk>') to stdout, in input order.
e.g.: spk2utt_to_utt2spk.py data/train/spk2utt | sort > data/train/utt2spk
"""


def main(argv=None):
    p = UsageParser(prog="spk2utt_to_utt2spk.py", description=DESCRIPTION)
    p.add_argument("files", nargs="*", metavar="<spk2utt>")
    args = p.parse_args(argv)
    for name, lineno, line in input_lines(args.files):
        words = line.split()
        if len(words) < 2:
            raise SerError(f"{name}:{lineno}: expected '<spk> <utt1> ...', got '{line.strip()}'")
        sys.stdout.writelines(f"{utt} {words[0]}\n" for utt in words[1:])
    return 0


if __name__ == "__main__":
    run_main(main)
