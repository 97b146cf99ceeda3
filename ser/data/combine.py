"""Combining data directories into one, as Kaldi's utils/combine_data.sh does.

Tables present in every source are concatenated; a table missing from some source is left out
with a warning, except utt2uniq, which defaults to the identity (utt -> utt) for a source without
it, so that augmented and original copies can be combined. Extra files (--extra-files) must be
present in every source. Utterance ids must be unique across sources; a speaker may appear in
several sources, and its per-speaker entries must then agree.
"""
import os

from ser.data.atomic import atomic_write_text
from ser.data.datadir import PLAIN_FILES, DataDir, is_utt_table, write_tables
from ser.data.kvfile import read_kv, write_kv
from ser.data.validate import read_source_tables
from ser.errors import SerError


def combine_data_dirs(dest, srcs, extra_files=(), warn=None):
    """Combine the data dirs `srcs` into `dest`. Returns (num utterances, num speakers).

    warn(message) is called for each table left out (default: ignore).
    """
    if not srcs:
        raise SerError("no source data directory given")
    srcs = [DataDir(s) for s in srcs]
    dest = DataDir(dest)
    for s in srcs:
        if os.path.realpath(s.path) == os.path.realpath(dest.path):
            raise SerError(f"destination {dest.path} is also a source")
    src_tables = [read_source_tables(s) for s in srcs]   # raises when one is not a consistent data dir
    extra_files = list(extra_files)
    for name in extra_files:
        for s in srcs:
            if not s.has(name):
                raise SerError(f"{s.file(name)}: no such file (given in --extra-files)")

    present = [set(t) for t in src_tables]
    names = ["utt2spk"] + sorted(set.union(*present) - {"utt2spk"})  # duplicates named by utt2spk
    combined = {}
    for name in names:
        if name != "utt2uniq" and not all(name in p for p in present):
            if name not in extra_files and warn:
                missing = next(s.path for s, p in zip(srcs, present) if name not in p)
                warn(f"{name} is not in every source (not in {missing}): left out")
            continue
        table, origin = {}, {}  # origin: the source of each key, for messages
        combined[name] = table
        for s, t in zip(srcs, src_tables):
            if name in t:
                part = t[name]
            else:  # utt2uniq of a source without augmented copies
                part = {u: u for u in t["utt2spk"]}
            for key, value in part.items():
                if key in table:
                    if is_utt_table(name):
                        raise SerError(f"utterance '{key}' is in both {origin[key]} and {s.path} "
                                       f"({name})")
                    if table[key] != value:
                        raise SerError(f"speaker '{key}' has different values in {name} of "
                                       f"{origin[key]} and {s.path}")
                table[key] = value
                origin.setdefault(key, s.path)

    utt2spk = write_tables(dest, combined, combined["utt2spk"])
    for name in extra_files:
        if name in combined or name == "spk2utt":
            continue
        table = {}
        for s in srcs:
            for key, value in read_kv(s.file(name), allow_empty=True).items():
                if key in table and table[key] != value:
                    raise SerError(f"key '{key}' of {name} has different values in the sources "
                                   f"(second: {s.path})")
                table[key] = value
        write_kv(dest.file(name), table)
    for name in PLAIN_FILES:  # e.g. frame_shift: kept when every source has the same
        if all(s.has(name) for s in srcs):
            values = {_read_text(s.file(name)) for s in srcs}
            if len(values) == 1:
                atomic_write_text(dest.file(name), values.pop())
    return len(utt2spk), len(set(utt2spk.values()))


def _read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()
