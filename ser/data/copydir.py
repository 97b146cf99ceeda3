"""Copying a data directory with optional id prefixes, as Kaldi's utils/copy_data_dir.sh does.

With --utt-prefix P every utterance id gets the prefix P (in every per-utterance table); with
--spk-prefix Q every speaker id gets Q (the keys of per-speaker tables and the values of utt2spk).
The values of utt2uniq stay the original ids. For speed perturbation Kaldi gives both the same
prefix (`sp0.9-`): speaker `sp0.9-03`, utterance `sp0.9-03-03a01Fa`, which keeps utterance ids
prefixed by their speaker ids.
"""
import os

from ser.data.datadir import DataDir, write_filtered
from ser.data.validate import read_source_tables
from ser.errors import SerError


def copy_data_dir(src, dest, utt_prefix="", spk_prefix=""):
    """Copy data dir src to dest with id prefixes. Returns (new utt2spk, ids not prefixed
    by their speaker id, e.g. when only utt_prefix was given)."""
    for name, prefix in (("utt", utt_prefix), ("spk", spk_prefix)):
        if prefix and any(c.isspace() for c in prefix):
            raise SerError(f"the {name} prefix '{prefix}' contains white space")
    src, dest = DataDir(src), DataDir(dest)
    if os.path.realpath(src.path) == os.path.realpath(dest.path):
        raise SerError(f"source and destination are the same directory: {src.path}")
    tables = read_source_tables(src)
    utt2spk = write_filtered(src, dest, tables["utt2spk"], utt_prefix, spk_prefix, tables=tables)
    unprefixed = [u for u, s in utt2spk.items() if not u.startswith(s)]
    return utt2spk, unprefixed
