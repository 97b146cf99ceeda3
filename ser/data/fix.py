"""Repairing a data directory, as Kaldi's utils/fix_data_dir.sh does.

Keeps only the utterances present in every per-utterance table and whose speaker is present in
every per-speaker table, sorts every table in C order and rebuilds spk2utt. The original files are
backed up to DIR/.backup/ first. Lines without a value are dropped; of duplicated keys the first
line is kept.
"""
import os
import shutil

from ser.data.datadir import DataDir, allows_empty_value, is_utt_table, write_filtered
from ser.data.kvfile import table_lines
from ser.errors import SerError


def read_table_lenient(path, allow_empty=False):
    """Read a table file, tolerating disorder: returns ({key: value}, number of lines dropped).

    Dropped: empty lines, keys without a value (unless allow_empty), repeats of a key.
    """
    table, dropped = {}, 0
    for _, line in table_lines(path):   # bytes that are not UTF-8 cannot be repaired: an error
        parts = line.strip().split(maxsplit=1)
        if not parts or (len(parts) == 1 and not allow_empty) or parts[0] in table:
            dropped += 1
            continue
        table[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return table, dropped


def fix_data_dir(path):
    """Fix the data dir `path` in place. Returns a summary dict.

    Keys: kept, dropped (utterances), num_spks, bad_lines (lines dropped while reading),
    backup (the backup directory). Raises SerError when no utterance would be left.
    """
    ddir = DataDir(path)
    if not ddir.has("utt2spk"):
        raise SerError(f"{ddir.file('utt2spk')}: no such file (not a data directory?)")
    tables, bad_lines = {}, 0
    for name in ddir.utt_tables() + ddir.spk_tables():
        tables[name], n = read_table_lenient(ddir.file(name), allow_empty=allows_empty_value(name))
        bad_lines += n
    utt2spk = tables["utt2spk"]
    for utt in [u for u, s in utt2spk.items() if len(s.split()) != 1]:
        del utt2spk[utt]  # "utt spk junk": not a valid line
        bad_lines += 1

    speakers = set(utt2spk.values())
    for name, table in tables.items():
        if not is_utt_table(name):
            speakers &= set(table)
    keep = [u for u, s in utt2spk.items() if s in speakers]
    for name, table in tables.items():
        if is_utt_table(name):
            keep = [u for u in keep if u in table]
    if not keep:
        raise SerError(f"{ddir.path}: no utterance is in every table file; not changing anything")

    backup = ddir.file(".backup")
    os.makedirs(backup, exist_ok=True)
    for name in ddir.tables():
        shutil.copy2(ddir.file(name), os.path.join(backup, name))
    write_filtered(ddir, ddir, keep, tables=tables)
    return {"kept": len(keep), "dropped": len(utt2spk) - len(keep),
            "num_spks": len({utt2spk[u] for u in keep}), "bad_lines": bad_lines, "backup": backup}
