"""Command-line parsing for the utils/ data-dir tools, with Kaldi's conventions.

A wrong command line prints the full usage and a one-line error to stderr and exits 1 (argparse
would exit 2); --help prints the usage to stdout and exits 0.
"""
import argparse
import sys

from ser.data.kvfile import decoded_lines, table_lines


class UsageParser(argparse.ArgumentParser):
    """ArgumentParser that exits 1 with the whole usage on a wrong command line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.print_help(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _int_at_least(text, low):
    try:
        n = int(text)
    except ValueError:
        n = low - 1
    if n < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got '{text}'")
    return n


def positive_int(text):
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def input_lines(paths):
    """(name, line number, line) of every line of the files `paths` in turn, or of stdin when
    there is none ('-' is stdin too), for filters like utt2spk_to_spk2utt.py."""
    for path in paths or ["-"]:
        if path == "-":
            raw = getattr(sys.stdin, "buffer", None)   # text-only stand-ins (tests) are decoded already
            numbered = decoded_lines(raw, "<stdin>") if raw is not None else enumerate(sys.stdin, 1)
            name = "<stdin>"
        else:
            numbered, name = table_lines(path), path
        for lineno, line in numbered:
            yield name, lineno, line
