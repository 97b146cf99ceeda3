"""Writing the data dir of a corpus (egs/<corpus>/local/prepare_<corpus>.py).

A preparation script fills the per-utterance tables wav.scp, utt2spk, text, utt2emo and utt2dur
(plus any per-speaker table such as spk2gender) with `add_utterance`, measuring each audio file
with `audio_duration` (a bad file is an error naming it) or `probe_audio` (a bad file is skipped
and reported), and writes them with `write_data_dir` (spk2utt derived, every table sorted with
LC_ALL=C, written atomically).
"""
import os

import soundfile as sf

from ser.data.datadir import DataDir, write_tables
from ser.errors import SerError

UTT_TABLES = ("wav.scp", "utt2spk", "text", "utt2emo", "utt2dur")


def new_tables(*extra):
    """Empty tables: the per-utterance ones (UTT_TABLES) and the `extra` ones (e.g. spk2gender)."""
    return {name: {} for name in UTT_TABLES + tuple(extra)}


def add_utterance(tables, utt, wav, spk, text, emotion, duration):
    """Enter utterance `utt` (audio `wav`, speaker, transcript, emotion, seconds) in the tables."""
    tables["wav.scp"][utt] = wav
    tables["utt2spk"][utt] = spk
    tables["text"][utt] = text
    tables["utt2emo"][utt] = emotion
    tables["utt2dur"][utt] = f"{duration:.4f}"


def audio_duration(path):
    """Duration in seconds of audio file `path` (soundfile.info); SerError naming the file when
    it is unreadable or empty."""
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises several types for unreadable files
        raise SerError(f"{path}: unreadable audio ({' '.join(str(e).split())})") from None
    if info.frames == 0:
        raise SerError(f"{path}: empty audio file")
    return info.frames / info.samplerate


def probe_audio(path):
    """(duration in seconds, None), or (None, why the file cannot be used: missing, unreadable
    (first line of the reason), empty), for corpora whose bad files are skipped and reported."""
    if path is None or not os.path.isfile(path):
        return None, "missing"
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises several types for unreadable files
        return None, f"unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    if info.frames == 0:
        return None, "empty"
    return info.frames / info.samplerate, None


def summarize(items, what, limit=3):
    """'<n> <what> (<first items>; ...)' for a one-line warning about skipped items."""
    shown = "; ".join(items[:limit])
    return f"{len(items)} {what} ({shown}{'; ...' if len(items) > limit else ''})"


def count_mismatch(counts, expected):
    """None when the per-class `counts` equal the release's `expected` ones, else the texts
    (found, want): 'class n ...' over every class of either, and of the release."""
    if counts == expected:
        return None
    found = " ".join(f"{c} {counts.get(c, 0)}" for c in sorted(set(expected) | set(counts)))
    want = " ".join(f"{c} {n}" for c, n in sorted(expected.items()))
    return found, want


def write_data_dir(data_dir, tables):
    """Write the tables and spk2utt (from utt2spk) into `data_dir` (created; table files of an
    earlier data dir there that `tables` lacks are removed). Returns utt2spk."""
    return write_tables(DataDir(data_dir), tables, tables["utt2spk"])
