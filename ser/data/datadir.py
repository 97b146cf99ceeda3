"""A Kaldi data directory: which table files it holds, and writing a (renamed) subset of it.

Table files are of three kinds:
- per utterance, keyed by utterance id: utt2spk, wav.scp, text, feats.scp, vad.scp, and every
  file named utt2* (utt2emo, utt2dur, utt2uniq, utt2lang, utt2num_frames, ...);
- per speaker, keyed by speaker id: cmvn.scp and every file named spk2* but spk2utt;
- spk2utt, which is always derived from utt2spk.
utt2spk is the primary table: the tools below keep, drop and rename utterances by it.
A few plain files (frame_shift, conf.yaml) are copied as they are.
"""
import os
import shutil

from ser.data.kvfile import c_sorted, read_kv, write_kv
from ser.errors import SerError

UTT_TABLES = ("utt2spk", "wav.scp", "text", "feats.scp", "vad.scp")
SPK_TABLES = ("cmvn.scp",)
PLAIN_FILES = ("frame_shift", "conf.yaml")  # copied as they are (conf.yaml: feature config)


def is_utt_table(name):
    """Whether a file of a data dir is a table keyed by utterance id."""
    return name in UTT_TABLES or name.startswith("utt2")


def is_spk_table(name):
    """Whether a file of a data dir is a table keyed by speaker id (spk2utt excluded)."""
    return name in SPK_TABLES or (name.startswith("spk2") and name != "spk2utt")


def allows_empty_value(name):
    """text may hold an empty transcript; in every other table a key needs a value."""
    return name == "text"


def spk2utt_of(utt2spk):
    """spk2utt of a {utt: spk} dict: speakers in order of first appearance, utts in input order."""
    spk2utt = {}
    for utt, spk in utt2spk.items():
        spk2utt.setdefault(spk, []).append(utt)
    return spk2utt


def utt2spk_of(spk2utt):
    """utt2spk of a {spk: [utts]} dict, utts in input order."""
    return {utt: spk for spk, utts in spk2utt.items() for utt in utts}


def sorted_spk2utt(utt2spk):
    """spk2utt as it is written in a data dir: utterance lists in C order."""
    return spk2utt_of({u: utt2spk[u] for u in c_sorted(utt2spk)})


class DataDir:
    """A data directory on disk. `path` is kept as given, for messages."""

    def __init__(self, path):
        path = os.fspath(path)
        self.path = path.rstrip("/") or "/"

    def __repr__(self):
        return f"DataDir({self.path!r})"

    def file(self, name):
        return os.path.join(self.path, name)

    def has(self, name):
        return os.path.isfile(self.file(name))

    def _files(self):
        if not os.path.isdir(self.path):
            raise SerError(f"{self.path}: no such data directory")
        return sorted(n for n in os.listdir(self.path)
                      if not n.startswith(".") and not n.endswith((".tmp", "~")) and self.has(n))

    def utt_tables(self):
        """Names of the per-utterance table files present (utt2spk included)."""
        return [n for n in self._files() if is_utt_table(n)]

    def spk_tables(self):
        """Names of the per-speaker table files present (spk2utt excluded)."""
        return [n for n in self._files() if is_spk_table(n)]

    def tables(self):
        """Names of every table file present, spk2utt included."""
        return [n for n in self._files() if is_utt_table(n) or is_spk_table(n) or n == "spk2utt"]

    def read(self, name):
        """Read a table file as a dict (SerError naming file:line on a duplicate key)."""
        return read_kv(self.file(name), allow_empty=allows_empty_value(name))

    def write(self, name, table):
        """Write a table file, atomically, sorted in C order."""
        write_kv(self.file(name), table)

    def read_tables(self):
        """{name: table} of every per-utterance and per-speaker table file."""
        return {n: self.read(n) for n in self.utt_tables() + self.spk_tables()}

    def utt2spk(self):
        if not self.has("utt2spk"):
            raise SerError(f"{self.file('utt2spk')}: no such file (not a data directory?)")
        return self.read("utt2spk")

    def write_spk2utt(self, utt2spk):
        self.write("spk2utt", sorted_spk2utt(utt2spk))


def write_tables(dest, tables, utts, utt_prefix="", spk_prefix=""):
    """Write into data dir `dest` the tables ({name: {key: value}}, utt2spk among them)
    restricted to the utterances `utts`.

    Utterance ids get utt_prefix, speaker ids spk_prefix (the values of utt2spk included; the
    values of utt2uniq stay the original ids). Per-speaker tables keep the speakers of `utts`;
    spk2utt is rebuilt; table files of dest not in `tables` are removed, so that dest is a
    consistent data dir. Returns the new utt2spk.
    """
    utts = set(utts)
    speakers = {tables["utt2spk"][u] for u in utts}
    out = {}
    for name, table in tables.items():
        if is_utt_table(name):
            out[name] = {utt_prefix + u: v for u, v in table.items() if u in utts}
        else:
            out[name] = {spk_prefix + s: v for s, v in table.items() if s in speakers}
    out["utt2spk"] = {u: spk_prefix + s for u, s in out["utt2spk"].items()}

    os.makedirs(dest.path, exist_ok=True)
    for stale in set(dest.tables()) - set(out) - {"spk2utt"}:
        os.remove(dest.file(stale))
    for name, table in out.items():
        dest.write(name, table)
    dest.write_spk2utt(out["utt2spk"])
    return out["utt2spk"]


def write_filtered(src, dest, utts, utt_prefix="", spk_prefix="", *, tables):
    """Write into dest the `tables` of data dir src ({name: dict}, as read and checked by the
    caller: src.read_tables(), validate.read_source_tables()) restricted to the utterances `utts`,
    as write_tables does, and copy src's plain files (frame_shift); dest may be src itself.
    Returns the new utt2spk.
    """
    if "utt2spk" not in tables:
        raise SerError(f"{src.file('utt2spk')}: no such file (not a data directory?)")
    utt2spk = write_tables(dest, tables, utts, utt_prefix, spk_prefix)
    if os.path.realpath(src.path) != os.path.realpath(dest.path):
        for name in PLAIN_FILES:
            if src.has(name):
                shutil.copyfile(src.file(name), dest.file(name))
    return utt2spk
