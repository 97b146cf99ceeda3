#!/usr/bin/env python3
"""Writes a Kaldi data dir for Berlin EmoDB from the official file names.

`wav/SSTTTEv.wav`: speaker SS, text code TTT (sentence in local/sentences.txt), emotion letter E,
version v. Utterance id = `SS-SSTTTEv` (speaker prefix, as Kaldi sorts by speaker).
"""
import argparse
import os
import re
import sys

import soundfile as sf

from ser.data.kvfile import read_kv, write_kv
from ser.errors import SerError, run_main

EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear",
            "F": "happiness", "T": "sadness", "N": "neutral"}
FOUR_CLASS = ("anger", "happiness", "neutral", "sadness")
NAME = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])\.wav$")
NUM_UTTS = 535


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--four-class", choices=["true", "false"], default="false",
                   help="keep only anger, happiness, neutral, sadness (the papers' 4 classes)")
    p.add_argument("--sentences", default=os.path.join(os.path.dirname(__file__), "sentences.txt"))
    p.add_argument("corpus", help="EmoDB root (holds wav/)")
    p.add_argument("data_dir")
    args = p.parse_args(argv)

    wav_dir = os.path.join(args.corpus, "wav")
    if not os.path.isdir(wav_dir):
        raise SerError(f"EMODB={args.corpus}: no wav/ directory (set EMODB to the EmoDB root)")
    sentences = read_kv(args.sentences)
    names = sorted(f for f in os.listdir(wav_dir) if f.endswith(".wav"))
    if not names:
        raise SerError(f"EMODB={args.corpus}: wav/ holds no .wav files")

    tables = {k: {} for k in ("wav.scp", "utt2spk", "text", "utt2emo", "utt2dur")}
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
        try:
            info = sf.info(path)
        except Exception as e:
            raise SerError(f"{path}: unreadable audio ({e})") from None
        if info.frames == 0:
            raise SerError(f"{path}: empty audio file")
        utt = f"{spk}-{name[:-4]}"
        tables["wav.scp"][utt] = path
        tables["utt2spk"][utt] = spk
        tables["text"][utt] = sentences[code]
        tables["utt2emo"][utt] = emotion
        tables["utt2dur"][utt] = f"{info.frames / info.samplerate:.4f}"

    if args.four_class == "false" and len(names) != NUM_UTTS:
        print(f"prepare_emodb.py: warning: {len(names)} files in {wav_dir}, the official corpus has "
              f"{NUM_UTTS}", file=sys.stderr)
    os.makedirs(args.data_dir, exist_ok=True)
    spk2utt = {}
    for utt, spk in tables["utt2spk"].items():
        spk2utt.setdefault(spk, []).append(utt)
    for name, table in tables.items():
        write_kv(os.path.join(args.data_dir, name), table)
    write_kv(os.path.join(args.data_dir, "spk2utt"), {s: sorted(u) for s, u in spk2utt.items()})
    emos = sorted(set(tables["utt2emo"].values()))
    print(f"prepare_emodb.py: {args.data_dir}: {len(tables['utt2spk'])} utterances, "
          f"{len(spk2utt)} speakers, {len(emos)} emotions ({' '.join(emos)})")
    return 0


if __name__ == "__main__":
    run_main(main)
