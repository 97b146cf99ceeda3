"""Splitting a data directory into N parts for parallel jobs, as Kaldi's utils/split_data.sh.

`DIR/splitN/1 .. DIR/splitN/N` (per-utterance split: `DIR/splitNutt/...`, as Kaldi names it, so
that the two kinds of split never overwrite each other) are data dirs. By default whole speakers
go to one part (per-speaker normalisation stays possible); parts are contiguous in sorted order
(so concatenating per-part outputs in part order gives sorted output) and as even as possible in
number of utterances. A split newer than every table of DIR is up to date and not redone.
"""
import os

from ser.data.datadir import DataDir, write_filtered
from ser.data.kvfile import c_sorted
from ser.errors import SerError


def split_points(weights, n):
    """Boundaries [0, b1, ..., len(weights)] of n non-empty contiguous groups of items with
    the given weights, each boundary at the item boundary closest to its share k/n of the total."""
    if not 1 <= n <= len(weights):
        raise ValueError(f"cannot split {len(weights)} items into {n} non-empty groups")
    cum = [0]
    for w in weights:
        cum.append(cum[-1] + w)
    total, bounds = cum[-1], [0]
    for k in range(1, n):
        target = k * total / n
        lo, hi = bounds[-1] + 1, len(weights) - (n - k)  # leave one item per later group
        bounds.append(min(range(lo, hi + 1), key=lambda j: (abs(cum[j] - target), j)))
    bounds.append(len(weights))
    return bounds


def split_dir_name(path, n, per_utt=False):
    return os.path.join(DataDir(path).path, f"split{n}{'utt' if per_utt else ''}")


def is_up_to_date(src, split_dir, n):
    """Whether every part 1..n holds the tables of src, each no older than src's newest table."""
    present = src.tables()
    names = set(present) | {"spk2utt"}  # always written, even when src lacks it
    newest = max(os.stat(src.file(t)).st_mtime_ns for t in present)
    for i in range(1, n + 1):
        part = DataDir(os.path.join(split_dir, str(i)))
        if not os.path.isdir(part.path) or set(part.tables()) != names:
            return False
        if any(os.stat(part.file(t)).st_mtime_ns < newest for t in names):
            return False
    return True


def split_data_dir(path, n, per_utt=False, force=False):
    """Split data dir `path` into n parts. Returns (split dir, whether it was (re)written).

    Raises SerError when there are fewer speakers (per_utt: utterances) than parts.
    """
    if n < 1:
        raise SerError(f"number of parts must be >= 1, got {n}")
    src = DataDir(path)
    utt2spk = src.utt2spk()
    split_dir = split_dir_name(path, n, per_utt)
    if not force and os.path.isdir(split_dir) and is_up_to_date(src, split_dir, n):
        return split_dir, False

    utts = c_sorted(utt2spk)
    if per_utt:
        groups = [[u] for u in utts]
        if len(groups) < n:
            raise SerError(f"{src.path} has {len(groups)} utterances, cannot split it into {n} parts")
    else:
        by_spk = {}
        for u in utts:
            by_spk.setdefault(utt2spk[u], []).append(u)
        groups = list(by_spk.values())
        if len(groups) < n:
            raise SerError(f"{src.path} has {len(groups)} speakers, cannot split it into {n} "
                           f"parts by speaker (use --per-utt)")
    bounds = split_points([len(g) for g in groups], n)
    tables = src.read_tables()
    for i in range(n):
        part_utts = [u for g in groups[bounds[i]:bounds[i + 1]] for u in g]
        write_filtered(src, DataDir(os.path.join(split_dir, str(i + 1))), part_utts, tables=tables)
    return split_dir, True
