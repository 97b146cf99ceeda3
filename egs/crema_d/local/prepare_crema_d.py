#!/usr/bin/env python3
"""Writes a Kaldi data dir for CREMA-D from the official release (the git-lfs repository).

    prepare_crema_d.py [--four-class true|false] [--exclude FILE] CREMA_D_DIR DATA_DIR

Audio and labels: CREMA_D_DIR/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav, e.g.
1001_DFA_ANG_XX.wav: actor 1001..1091, one of 12 sentence codes (text in local/sentences.txt,
from the release's README), emotion ANG DIS FEA HAP NEU SAD (the acted, intended emotion),
level LO MD HI or XX (unspecified; the single-X spelling of one misnamed release file is
accepted). Speaker = actor; utterance id `<actor>-<file name without .wav>`.
VideoDemographics.csv (ActorID, Age, Sex, Race, Ethnicity) gives spk2gender; SentenceFilenames.csv
(the clip list of the rating study) is only used to report listed clips without audio.
Clips named in --exclude (default local/exclude.txt: clips reported broken upstream) are left
out. Details and what is uncertain: local/README.md.
"""
import argparse
import csv
import os
import re
import sys
from collections import Counter

from tqdm import tqdm

from ser.data import prepare
from ser.data.kvfile import read_kv
from ser.data.prepare import (add_corpus_args, add_utterance, count_mismatch, data_summary, new_tables,
                              summarize, write_data_dir)
from ser.errors import SerError, run_main

PROG = "prepare_crema_d.py"
HERE = os.path.dirname(os.path.abspath(__file__))
EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness",
            "NEU": "neutral", "SAD": "sadness"}
FOUR_CLASS = ("anger", "happiness", "neutral", "sadness")
LEVELS = ("LO", "MD", "HI", "XX", "X")
NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})\.wav$")
# The release: 7442 clips of 91 actors (48 male, 43 female); per intended emotion as counted
# from the file names (neutral was recorded once per sentence, the others also at 3 levels).
EXPECTED = {"anger": 1271, "disgust": 1271, "fear": 1271, "happiness": 1271, "neutral": 1087,
            "sadness": 1271}
NUM_ACTORS = 91
LFS_MAGIC = b"version https://git-lfs"


def warn(msg):
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


def read_csv(path):
    """Rows of a CSV file as dicts with stripped keys and values."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        rows = list(csv.reader(f, skipinitialspace=True))
    if not rows:
        return []
    header = [h.strip().strip('"') for h in rows[0]]
    return [{h: v.strip().strip('"') for h, v in zip(header, row)} for row in rows[1:] if row]


def read_genders(root):
    """actor -> 'm'/'f' from VideoDemographics.csv; {} (with a warning) when it is missing."""
    path = os.path.join(root, "VideoDemographics.csv")
    if not os.path.isfile(path):
        warn(f"no {path}: no spk2gender (local/make_actor_folds.py cannot balance genders)")
        return {}
    genders = {}
    for row in read_csv(path):
        sex = row.get("Sex", "").lower()
        if row.get("ActorID") and sex in ("male", "female"):
            genders[row["ActorID"]] = sex[0]
    return genders


def listed_clips(root):
    """Clip names of SentenceFilenames.csv (empty if the file is missing)."""
    path = os.path.join(root, "SentenceFilenames.csv")
    if not os.path.isfile(path):
        return []
    return [row["Filename"] for row in read_csv(path) if row.get("Filename")]


def probe_audio(path):
    """(duration in seconds, None) or (None, why the file cannot be used); SerError for a
    git-lfs pointer (the audio of the repository was not fetched)."""
    with open(path, "rb") as f:
        head = f.read(len(LFS_MAGIC))
    if head == LFS_MAGIC:
        raise SerError(f"{path}: a git-lfs pointer, not audio: fetch the audio of CREMA_D "
                       "(git lfs pull in the repository, or git lfs clone)")
    return prepare.probe_audio(path)


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", default=os.path.join(HERE, "sentences.txt"),
                   help="sentence code -> text table (default: local/sentences.txt)")
    p.add_argument("--exclude", default=os.path.join(HERE, "exclude.txt"),
                   help="table 'clip reason' of clips to leave out (default: local/exclude.txt; "
                        "'none': keep every clip)")
    add_corpus_args(p, "CREMA-D root (holds AudioWAV/ and VideoDemographics.csv)")
    args = p.parse_args(argv)
    root = args.corpus

    wav_dir = os.path.join(root, "AudioWAV")
    if not os.path.isdir(wav_dir):
        raise SerError(f"CREMA_D={root}: no AudioWAV/ directory (set CREMA_D to the CREMA-D root "
                       "holding AudioWAV/ and VideoDemographics.csv)")
    sentences = read_kv(args.sentences)
    exclude = {} if args.exclude == "none" else read_kv(args.exclude)
    names = sorted(n for n in os.listdir(wav_dir) if n.lower().endswith(".wav") and not n.startswith("."))
    if not names:
        raise SerError(f"CREMA_D={root}: AudioWAV/ holds no .wav files")

    clips, bad_names, dropped = {}, [], Counter()
    for name in names:
        m = NAME.match(name)
        if not m or m.group(2) not in sentences or m.group(3) not in EMOTIONS or m.group(4) not in LEVELS:
            bad_names.append(name)
            continue
        actor, code, emo, _ = m.groups()
        emotion = EMOTIONS[emo]
        if args.four_class == "true" and emotion not in FOUR_CLASS:
            dropped[emotion] += 1
            continue
        clips[name[:-4]] = (actor, code, emotion)
    if bad_names:
        warn(summarize(bad_names, "files in AudioWAV/ skipped: not <actor>_<sentence>_<emotion>_<level>.wav "
                       "with known codes"))
    if not clips:
        raise SerError(f"CREMA_D={root}: no usable clip in AudioWAV/")

    expected = {c: n for c, n in EXPECTED.items() if args.four_class == "false" or c in FOUR_CLASS}
    mismatch = count_mismatch(dict(Counter(v[2] for v in clips.values())), expected)
    if mismatch:
        found, want = mismatch
        print(f"{PROG}: WARNING: {len(clips)} clips ({found}), the CREMA-D release has "
              f"{sum(expected.values())} ({want}): is CREMA_D={root} complete?", file=sys.stderr)
    actors = {v[0] for v in clips.values()}
    if len(actors) != NUM_ACTORS:
        warn(f"{len(actors)} actors in AudioWAV/, the release has {NUM_ACTORS}")

    # The rating study's clip list: clips of the selected classes it names but AudioWAV lacks
    # (a listed ..._XX clip may be spelled ..._X, as one file of the release is).
    stems = {n[:-4] for n in names}
    unheard = []
    for clip in listed_clips(root):
        m = NAME.match(clip + ".wav")
        if not m or m.group(3) not in EMOTIONS:
            continue
        if args.four_class == "true" and EMOTIONS[m.group(3)] not in FOUR_CLASS:
            continue
        if clip not in stems and not (clip.endswith("_XX") and clip[:-1] in stems):
            unheard.append(clip)
    if unheard:
        warn(summarize(unheard, "clips listed in SentenceFilenames.csv have no AudioWAV/ file"))

    genders = read_genders(root)
    tables = new_tables()
    excluded, bad_audio = [], []
    for clip in tqdm(sorted(clips), desc=PROG, unit="utt", disable=None):
        actor, code, emotion = clips[clip]
        if clip in exclude:
            excluded.append(clip)
            continue
        path = os.path.abspath(os.path.join(wav_dir, clip + ".wav"))
        dur, problem = probe_audio(path)
        if problem:
            bad_audio.append(f"{path}: {problem}")
            continue
        add_utterance(tables, f"{actor}-{clip}", path, actor, sentences[code], emotion, dur)
    if bad_audio:
        warn(summarize(bad_audio, "clips skipped: no usable audio"))
    if not tables["utt2spk"]:
        raise SerError(f"CREMA_D={root}: no clip with usable audio in AudioWAV/")
    speakers = set(tables["utt2spk"].values())
    no_gender = sorted(s for s in speakers if s not in genders)
    if genders and no_gender:
        warn(f"{len(no_gender)} actors have no Male/Female row in VideoDemographics.csv "
             f"({' '.join(no_gender[:5])}{' ...' if len(no_gender) > 5 else ''}): no spk2gender")
    if not no_gender:
        tables["spk2gender"] = {s: genders[s] for s in speakers}

    write_data_dir(args.data_dir, tables)
    print(f"{PROG}: {data_summary(args.data_dir, tables, counts=True)}")
    if excluded:
        print(f"{PROG}: left out {len(excluded)} clips named in {args.exclude}: {' '.join(excluded)}")
    if dropped:
        print(f"{PROG}: not used: " + " ".join(f"{k} {n}" for k, n in sorted(dropped.items())))
    return 0


if __name__ == "__main__":
    run_main(main)
