#!/usr/bin/env python3
"""Writes a Kaldi data dir for RAVDESS (speech part) from the official file names.

`Actor_AA/MM-VC-EE-II-SS-RR-AA.wav`: modality MM, vocal channel VC, emotion EE, intensity II,
statement SS, repetition RR, actor AA (odd = male, even = female). Only audio-only speech
(MM = 03, VC = 01) is used; any other well-formed name (video, song) is skipped and counted.
A .wav name that does not have the seven 2-digit fields, or has an unknown emotion or statement
code, or whose actor field differs from its Actor_AA folder, is an error naming the file.

Speaker = actor `AA`; utterance id = `AA-<name without .wav>` (speaker prefix, as Kaldi sorts by
speaker). Emotion names are those shared with EmoDB (happiness, sadness, anger, ...). Besides the
usual tables, spk2gender (m/f, Kaldi's convention) is written.
"""
import argparse
import os
import re
import sys

from ser.data.prepare import (add_corpus_args, add_utterance, audio_duration, data_summary, new_tables,
                             write_data_dir)
from ser.errors import SerError, run_main

EMOTIONS = {"01": "neutral", "02": "calm", "03": "happiness", "04": "sadness",
            "05": "anger", "06": "fear", "07": "disgust", "08": "surprise"}
# Calm is dropped, not merged into neutral: see local/README.md.
FOUR_CLASS = ("anger", "happiness", "neutral", "sadness")
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
INTENSITIES = ("01", "02")
REPETITIONS = ("01", "02")
SPEECH = ("03", "01")  # modality audio-only, vocal channel speech
ACTOR_DIR = re.compile(r"^Actor_(\d\d)$")
NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.wav$")
NUM_UTTS = 1440  # 24 actors x 60 speech files


def parse_name(path, actor):
    """The fields of a RAVDESS file name, checked; SerError naming `path` if malformed."""
    name = os.path.basename(path)
    m = NAME.match(name)
    if not m:
        raise SerError(f"{path}: not a RAVDESS file name (MM-VC-EE-II-SS-RR-AA.wav, 2-digit fields)")
    modality, channel, emo, intensity, statement, rep, aa = m.groups()
    if aa != actor:
        raise SerError(f"{path}: actor field '{aa}' does not match its folder Actor_{actor}")
    if (modality, channel) != SPEECH:
        return None
    for value, table, what in ((emo, EMOTIONS, "emotion"), (intensity, INTENSITIES, "intensity"),
                               (statement, STATEMENTS, "statement"), (rep, REPETITIONS, "repetition")):
        if value not in table:
            raise SerError(f"{path}: unknown {what} code '{value}'")
    return {"emotion": EMOTIONS[emo], "statement": statement, "actor": aa}


def find_files(corpus):
    """[(actor, path)] of every .wav file under corpus/Actor_XX/, sorted."""
    if not os.path.isdir(corpus):
        raise SerError(f"RAVDESS={corpus}: no such directory (set RAVDESS to the folder holding Actor_01 ...)")
    actors = sorted(d for d in os.listdir(corpus)
                    if ACTOR_DIR.match(d) and os.path.isdir(os.path.join(corpus, d)))
    if not actors:
        raise SerError(f"RAVDESS={corpus}: no Actor_XX directories (set RAVDESS to the folder holding "
                       f"Actor_01 ... Actor_24)")
    files = []
    for d in actors:
        actor = ACTOR_DIR.match(d).group(1)
        for name in sorted(os.listdir(os.path.join(corpus, d))):
            if name.lower().endswith(".wav"):
                files.append((actor, os.path.join(corpus, d, name)))
    if not files:
        raise SerError(f"RAVDESS={corpus}: the Actor_XX directories hold no .wav files")
    return files


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_args(p, "RAVDESS root (holds Actor_01 ... Actor_24)",
                    four_class_help="keep only anger, happiness, neutral, sadness (calm is dropped)")
    args = p.parse_args(argv)

    tables = new_tables()
    num_speech, skipped = 0, 0
    for actor, path in find_files(args.corpus):
        fields = parse_name(path, actor)
        if fields is None:
            skipped += 1
            continue
        num_speech += 1
        if args.four_class == "true" and fields["emotion"] not in FOUR_CLASS:
            continue
        path = os.path.abspath(path)
        add_utterance(tables, f"{actor}-{os.path.basename(path)[:-4]}", path, actor,
                      STATEMENTS[fields["statement"]], fields["emotion"], audio_duration(path))

    if num_speech == 0:
        raise SerError(f"RAVDESS={args.corpus}: no audio-only speech files (03-01-*.wav); "
                       f"{skipped} other files skipped")
    if skipped:
        print(f"prepare_ravdess.py: skipped {skipped} files that are not audio-only speech "
              f"(modality 03, vocal channel 01)", file=sys.stderr)
    if num_speech != NUM_UTTS:
        print(f"prepare_ravdess.py: warning: {num_speech} speech files in {args.corpus}, the official "
              f"corpus has {NUM_UTTS}", file=sys.stderr)
    speakers = set(tables["utt2spk"].values())
    tables["spk2gender"] = {s: "m" if int(s) % 2 else "f" for s in speakers}
    write_data_dir(args.data_dir, tables)
    print(f"prepare_ravdess.py: {data_summary(args.data_dir, tables)}")
    return 0


if __name__ == "__main__":
    run_main(main)
