#!/usr/bin/env python3
"""Writes a Kaldi data dir for Berlin EmoDB from the official file names.

`wav/SSTTTEv.wav`: speaker SS, text code TTT (sentence in local/sentences.txt), emotion letter E,
version v. Utterance id = `SS-SSTTTEv` (speaker prefix, as Kaldi sorts by speaker).
"""
import argparse
import os
import re
import sys

from ser.data.kvfile import read_kv
from ser.data.prepare import (add_corpus_args, add_utterance, audio_duration, data_summary, new_tables,
                              write_data_dir)
from ser.errors import SerError, run_main

EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear",
            "F": "happiness", "T": "sadness", "N": "neutral"}
FOUR_CLASS = ("anger", "happiness", "neutral", "sadness")
NAME = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])\.wav$")
NUM_UTTS = 535


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sentences", default=os.path.join(os.path.dirname(__file__), "sentences.txt"))
    add_corpus_args(p, "EmoDB root (holds wav/)")
    args = p.parse_args(argv)

    wav_dir = os.path.join(args.corpus, "wav")
    if not os.path.isdir(wav_dir):
        raise SerError(f"EMODB={args.corpus}: no wav/ directory (set EMODB to the EmoDB root)")
    sentences = read_kv(args.sentences)
    names = sorted(f for f in os.listdir(wav_dir) if f.endswith(".wav"))
    if not names:
        raise SerError(f"EMODB={args.corpus}: wav/ holds no .wav files")

    tables = new_tables()
    for name in names:
        m = NAME.match(name)
        if not m:
            raise SerError(f"{os.path.join(wav_dir, name)}: not an EmoDB file name (SSTTTEv.wav)")
        spk, code, letter, _ = m.groups()
        emotion = EMOTIONS[letter]
        if args.four_class == "true" and emotion not in FOUR_CLASS:
            continue
        if code not in sentences:
            raise SerError(f"{args.sentences}: no sentence for text code '{code}' ({name})")
        path = os.path.abspath(os.path.join(wav_dir, name))
        add_utterance(tables, f"{spk}-{name[:-4]}", path, spk, sentences[code], emotion,
                      audio_duration(path))

    if args.four_class == "false" and len(names) != NUM_UTTS:
        print(f"prepare_emodb.py: warning: {len(names)} files in {wav_dir}, the official corpus has "
              f"{NUM_UTTS}", file=sys.stderr)
    write_data_dir(args.data_dir, tables)
    print(f"prepare_emodb.py: {data_summary(args.data_dir, tables)}")
    return 0


if __name__ == "__main__":
    run_main(main)
