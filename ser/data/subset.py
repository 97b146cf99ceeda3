"""Taking a subset of a data directory, as Kaldi's utils/subset_data_dir.sh does."""
import os

from ser.data.datadir import DataDir, write_filtered
from ser.data.validate import read_source_tables
from ser.errors import SerError


def read_id_list(path):
    """The first word of every non-empty line of a list file (an id list, or any table file),
    with the line number of each: {id: line number}, first occurrence kept."""
    ids = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            words = line.split()
            if words and words[0] not in ids:
                ids[words[0]] = lineno
    return ids


def select_utterances(utt2spk, utt_list=None, spk_list=None, first=None, last=None,
                      src_name="source"):
    """The utterances (in utt2spk order) chosen by exactly one of the criteria.

    utt_list/spk_list: {id: line number} (an IdList also names its file in messages); first/last:
    a count. Raises SerError naming the first listed id that is not in utt2spk (`src_name`).
    """
    given = [c is not None for c in (utt_list, spk_list, first, last)]
    if sum(given) != 1:
        raise ValueError("give exactly one of utt_list, spk_list, first, last")
    utts = list(utt2spk)
    if first is not None or last is not None:
        n = first if first is not None else last
        if n < 1 or n > len(utts):
            raise SerError(f"cannot take {'first' if first is not None else 'last'} {n} "
                           f"utterances of {src_name}: it has {len(utts)}")
        return utts[:n] if first is not None else utts[len(utts) - n:]
    if utt_list is not None:
        ids, known, what = utt_list, utt2spk, "utterance"
    else:
        ids, known, what = spk_list, set(utt2spk.values()), "speaker"
    for name, lineno in ids.items():
        if name not in known:
            raise SerError(f"{what} '{name}' ({getattr(ids, 'path', 'list')}:{lineno}) "
                           f"is not in {src_name}")
    if utt_list is not None:
        return [u for u in utts if u in ids]
    return [u for u in utts if utt2spk[u] in ids]


class IdList(dict):
    """{id: line number} read from a list file, remembering its path for messages."""

    def __init__(self, path):
        super().__init__(read_id_list(path))
        self.path = path


def subset_data_dir(src, dest, utt_list=None, spk_list=None, first=None, last=None):
    """Write into dest the subset of data dir src chosen by exactly one criterion.

    utt_list/spk_list are paths of list files (first word of each line is an id); first/last
    take the first/last N utterances in sorted order. Returns the number of utterances written.
    """
    src, dest = DataDir(src), DataDir(dest)
    if os.path.realpath(src.path) == os.path.realpath(dest.path):
        raise SerError(f"source and destination are the same directory: {src.path}")
    tables = read_source_tables(src)
    utt2spk = tables["utt2spk"]
    utts = select_utterances(
        utt2spk,
        utt_list=IdList(utt_list) if utt_list is not None else None,
        spk_list=IdList(spk_list) if spk_list is not None else None,
        first=first, last=last, src_name=src.file("utt2spk"))
    if not utts:
        raise SerError(f"the list selects no utterance of {src.path}")
    write_filtered(src, dest, utts, tables=tables)
    return len(utts)
