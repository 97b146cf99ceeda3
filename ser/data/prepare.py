"""Writing the data dir of a corpus (egs/<corpus>/local/prepare_<corpus>.py).

A preparation script fills the per-utterance tables wav.scp, utt2spk, text, utt2emo and utt2dur
(plus any per-speaker table such as spk2gender) with `add_utterance`, measuring each audio file
with `audio_duration` (a bad file is an error naming it) or `probe_audio` (a bad file is skipped
and reported), and writes them with `write_data_dir` (spk2utt derived, every table sorted with
LC_ALL=C, written atomically). write_data_dir also looks for audio that would pass unnoticed:
shorter than MIN_SECONDS, all-zero, or a WAV whose header promises more samples than the file
holds (libsndfile reads what is there without a word); one warning line per kind on stderr, the
per-utterance list in <data_dir>/audio_warnings.txt.
"""
import os
import struct
import sys

import numpy as np
import soundfile as sf

from ser.data.datadir import DataDir, write_tables
from ser.errors import SerError

UTT_TABLES = ("wav.scp", "utt2spk", "text", "utt2emo", "utt2dur")
MIN_SECONDS = 0.1  # shorter audio gives no segment worth classifying
AUDIO_WARNINGS = "audio_warnings.txt"


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


def probe_or_note(path, bad, shown=None):
    """probe_audio's duration of `path`, or None after adding 'SHOWN: why' to the list `bad`
    (SHOWN: the path by default)."""
    duration, problem = probe_audio(path)
    if problem:
        bad.append(f"{shown or path}: {problem}")
    return duration


def check_probed(tables, bad, prog, none_usable):
    """After probe_or_note over a corpus: one warning line on stderr summarising the skipped
    utterances `bad`, and SerError(none_usable) when no utterance is left."""
    if bad:
        print(f"{prog}: warning: {summarize(bad, 'labelled utterances skipped: no usable audio')}",
              file=sys.stderr)
    if not tables["utt2spk"]:
        raise SerError(none_usable)


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


def wav_truncation(path):
    """(bytes the WAV header's data chunk promises, bytes the file holds) when the file is a RIFF
    WAVE shorter than its header says, else None."""
    try:
        with open(path, "rb") as f:
            if f.read(12)[8:12] != b"WAVE":
                return None
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                cid, size = head[:4], struct.unpack("<I", head[4:])[0]
                if cid == b"data":
                    have = os.fstat(f.fileno()).st_size - f.tell()
                    return (size, have) if have < size else None
                f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None


def audio_problems(wav_scp):
    """{kind: [utt, ...]} of audio that reads but is hardly usable (plain file entries only)."""
    kinds = {}
    for utt, path in sorted(wav_scp.items()):
        if not os.path.isfile(path):
            continue  # a pipe or a missing file: the readers report those
        cut = wav_truncation(path)
        if cut:
            kinds.setdefault("truncated (header promises more samples than the file holds)",
                             []).append(f"{utt} {path} ({cut[1]} of {cut[0]} data bytes)")
        try:
            x, sr = sf.read(path, dtype="int16", always_2d=True)
        except Exception:  # unreadable files are audio_duration's / probe_audio's to report
            continue
        if len(x) < MIN_SECONDS * sr:
            kinds.setdefault(f"shorter than {MIN_SECONDS:g} s", []).append(f"{utt} {path} ({len(x) / sr:.3f} s)")
        if len(x) and not np.any(x):
            kinds.setdefault("silent (all samples zero)", []).append(f"{utt} {path}")
    return kinds


def warn_audio_problems(data_dir, wav_scp, prog="prepare"):
    """One warning line per kind of audio problem on stderr; the full list in
    <data_dir>/audio_warnings.txt (none: the file is removed). Returns the problems."""
    kinds = audio_problems(wav_scp)
    path = os.path.join(data_dir, AUDIO_WARNINGS)
    if not kinds:
        if os.path.exists(path):
            os.unlink(path)
        return kinds
    with open(path, "w", encoding="utf-8") as f:
        for kind, items in kinds.items():
            f.writelines(f"{kind}: {item}\n" for item in items)
    shown = os.path.join(os.path.dirname(data_dir.rstrip("/")),
                         os.path.basename(data_dir.rstrip("/")).removesuffix(".tmp"), AUDIO_WARNINGS)
    for kind, items in kinds.items():
        print(f"{prog}: warning: {summarize([i.split()[1] for i in items], 'audio files ' + kind)}; "
              f"list in {shown}", file=sys.stderr)
    return kinds


def write_data_dir(data_dir, tables):
    """Write the tables and spk2utt (from utt2spk) into `data_dir` (created; table files of an
    earlier data dir there that `tables` lacks are removed), and warn about suspicious audio
    (warn_audio_problems). Returns utt2spk."""
    utt2spk = write_tables(DataDir(data_dir), tables, tables["utt2spk"])
    warn_audio_problems(data_dir, tables.get("wav.scp", {}),
                        prog=os.path.basename(sys.argv[0]) or "prepare")
    return utt2spk


FOUR_CLASS_HELP = "keep only anger, happiness, neutral, sadness (the papers' 4 classes)"


def add_corpus_args(parser, corpus_help, four_class_help=FOUR_CLASS_HELP):
    """The arguments every preparation script takes: --four-class, the corpus root and the data dir."""
    parser.add_argument("--four-class", choices=["true", "false"], default="false", help=four_class_help)
    parser.add_argument("corpus", help=corpus_help)
    parser.add_argument("data_dir")


def data_summary(data_dir, tables, counts=False):
    """The line a preparation script prints: 'DIR: N utterances, S speakers, E emotions (anger
    boredom ...)', with counts=True '(anger 127 boredom 81 ...)'."""
    emos = {}
    for e in tables["utt2emo"].values():
        emos[e] = emos.get(e, 0) + 1
    names = " ".join(f"{e} {emos[e]}" if counts else e for e in sorted(emos))
    return (f"{data_dir}: {len(tables['utt2spk'])} utterances, {len(set(tables['utt2spk'].values()))} speakers, "
            f"{len(emos)} emotions ({names})")
