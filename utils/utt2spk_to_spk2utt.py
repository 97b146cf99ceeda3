#!/usr/bin/env python3
"""utt2spk -> spk2utt filter, as Kaldi's utils/utt2spk_to_spk2utt.pl."""
import os
import sys

try:
    import ser  # noqa: F401  (in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.data.cli import UsageParser, input_lines  # noqa: E402
from ser.errors import SerError, run_main  # noqa: E402

DESCRIPTION = """\
Reads utt2spk lines ('<utt> <spk>') from the files, or from stdin, and writes spk2utt lines
('<spk> <utt1> <utt2> ...') to stdout: speakers in order of first appearance, utterances in
input order (sort the input for a sorted spk2utt).
e.g.: utt2spk_to_spk2utt.py data/train/utt2spk > data/train/spk2utt
"""


def main(argv=None):
    p = UsageParser(prog="utt2spk_to_spk2utt.py", description=DESCRIPTION)
    p.add_argument("files", nargs="*", metavar="<utt2spk>")
    args = p.parse_args(argv)
    spk2utt = {}
    for name, lineno, line in input_lines(args.files):
        words = line.split()
        if len(words) != 2:
            raise SerError(f"{name}:{lineno}: expected '<utt> <spk>', got '{line.strip()}'")
        spk2utt.setdefault(words[1], []).append(words[0])
    sys.stdout.writelines(f"{spk} {' '.join(utts)}\n" for spk, utts in spk2utt.items())
    return 0


if __name__ == "__main__":
    run_main(main)
