#!/usr/bin/env python3
"""Writes a Kaldi data dir for MSP-IMPROV from the official release.

    prepare_msp_improv.py [--four-class true|false] [--sentences FILE] MSP_IMPROV_DIR DATA_DIR

Labels: the consensus lines of the release's label file, spelled `Evalution.txt` (`Evaluation.txt`
is accepted too), at the root or one directory below it:
    UTD-IMPROV-S01A-F01-S-FM01.avi; N; A:3.000000; V:2.600000; D:3.000000 ; N:4.000000;
(clip id; consensus emotion A/H/S/N, O = other, X = no agreement; dimensional means). The
evaluator lines under each consensus line are not used.
Audio: MSP_IMPROV_DIR/Audio/session<N>/S<nn><E>/<scenario>/MSP-IMPROV-<id>.wav, found by name
anywhere under Audio/ (or under session*/ at the root if there is no Audio/).
Clip id `S01A-F01-S-FM01`: target sentence 01 with target emotion A, speaker F01 (gender +
session 01), scenario S (R read, T target sentence improvised, S other improvised turns, P
natural interaction), turn FM01. Speaker = F01..F06, M01..M06; utterance id
`<speaker>-MSP-IMPROV-<id>`. Emotions A anger, H happiness, S sadness, N neutral; O and X are
dropped (so --four-class true and false give the same 4 classes). Text: the target sentence for
scenarios R and T when --sentences (S01 ... S20 -> sentence) has it, else `<unk>`: the release
has no transcripts. Details and what is uncertain: local/README.md.
"""
import argparse
import os
import re
import sys
from collections import Counter

from tqdm import tqdm

from ser.data.kvfile import read_kv
from ser.data.prepare import (add_corpus_args, add_utterance, check_probed, count_mismatch, data_summary,
                              new_tables, probe_or_note, summarize, write_data_dir)
from ser.errors import SerError, run_main

PROG = "prepare_msp_improv.py"
LABEL_FILES = ("Evalution.txt", "Evaluation.txt")
EMOTIONS = {"A": "anger", "H": "happiness", "S": "sadness", "N": "neutral"}
DROPPED = {"O": "other", "X": "no agreement"}
# The release: 8438 clips; 7798 with one of the 4 emotions (Busso et al. 2017, and the usual
# 4-class MSP-IMPROV set); 12 speakers in 6 sessions.
EXPECTED = {"anger": 792, "happiness": 2644, "neutral": 3477, "sadness": 885}
NUM_SPEAKERS = 12
# Consensus line: `UTD-IMPROV-<id>.avi; <letter>; ...`, any white space around the fields.
LABEL_LINE = re.compile(r"^(?:UTD|MSP)-IMPROV-(\S+?)\.(?:avi|wav)\s*;\s*([A-Za-z]+)\s*;")
CLIP_ID = re.compile(r"^S(\d\d)([A-Z])-([FM])(\d\d)-([A-Z])-(\S+)$")
TEXT_SCENARIOS = ("R", "T")  # read and improvised renditions of the target sentence
UNKNOWN_TEXT = "<unk>"


def warn(msg):
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


def find_label_file(root):
    """The label file at the root or one level below; SerError naming MSP_IMPROV if none."""
    if not os.path.isdir(root):
        raise SerError(f"MSP_IMPROV={root}: no such directory (set MSP_IMPROV to the MSP-IMPROV "
                       "release root holding Evalution.txt and Audio/)")
    candidates = [os.path.join(root, n) for n in LABEL_FILES]
    for sub in sorted(os.listdir(root)):
        if os.path.isdir(os.path.join(root, sub)) and not sub.startswith("."):
            candidates += [os.path.join(root, sub, n) for n in LABEL_FILES]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise SerError(f"MSP_IMPROV={root}: no label file Evalution.txt (or Evaluation.txt) in it or "
                   "one level below (set MSP_IMPROV to the MSP-IMPROV release root)")


def audio_index(root, label_dir):
    """Clip file name without .wav -> path, for every WAV under Audio/ (else session*/) next to
    the label file or at the root."""
    tops = []
    for base in dict.fromkeys((label_dir, root)):
        audio = os.path.join(base, "Audio")
        tops = [audio] if os.path.isdir(audio) else sorted(
            os.path.join(base, d) for d in os.listdir(base)
            if d.lower().startswith("session") and os.path.isdir(os.path.join(base, d)))
        if tops:
            break
    if not tops:
        raise SerError(f"MSP_IMPROV={root}: no Audio/ directory (nor session*/ directories) "
                       "holding the WAV files")
    index = {}
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for n in sorted(filenames):
                if n.lower().endswith(".wav") and not n.startswith("."):
                    index.setdefault(n[:-4], os.path.join(dirpath, n))
    return index


def parse_labels(path):
    """(clip id -> (letter, line number), problems) from the consensus lines of the label file."""
    labels, problems = {}, []
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", errors="replace")
    for lineno, line in enumerate(raw.replace("\r", "\n").split("\n"), 1):
        m = LABEL_LINE.match(line.strip())
        if not m:
            continue  # evaluator lines, blank lines
        clip, letter = m.group(1), m.group(2).upper()
        if not CLIP_ID.match(clip):
            problems.append(f"{path}:{lineno}: unexpected clip id '{clip}'")
        elif clip in labels and labels[clip][0] != letter:
            problems.append(f"{path}:{lineno}: '{clip}' labelled {letter} here, "
                            f"{labels[clip][0]} on line {labels[clip][1]} (first kept)")
        else:
            labels.setdefault(clip, (letter, lineno))
    return labels, problems


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", default=None,
                   help="table 'S01 <target sentence>' ... for the text of read/target clips "
                        "(default: local/target_sentences.txt if it exists, else every text is <unk>)")
    add_corpus_args(p, "MSP-IMPROV release root (holds Evalution.txt and Audio/)",
                    four_class_help="anger, happiness, neutral, sadness (MSP-IMPROV has no other usable "
                                    "class: both values give the same data)")
    args = p.parse_args(argv)
    root = args.corpus

    label_file = find_label_file(root)
    index = audio_index(root, os.path.dirname(label_file))
    sentences_path = args.sentences
    if sentences_path is None:
        default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "target_sentences.txt")
        sentences_path = default if os.path.isfile(default) else None
    sentences = read_kv(sentences_path) if sentences_path else {}

    labels, problems = parse_labels(label_file)
    if not labels:
        raise SerError(f"{label_file}: no consensus label lines (UTD-IMPROV-<id>.avi; <emotion>; ...)")
    if problems:
        warn(summarize(problems, "label lines skipped"))

    kept, dropped = {}, Counter()
    for clip, (letter, _) in labels.items():
        if letter in EMOTIONS:
            kept[clip] = EMOTIONS[letter]
        else:
            dropped[DROPPED.get(letter, f"label {letter}")] += 1
    mismatch = count_mismatch(dict(Counter(kept.values())), EXPECTED)
    if mismatch:
        found, want = mismatch
        print(f"{PROG}: WARNING: {len(kept)} labelled utterances ({found}), the MSP-IMPROV release has "
              f"{sum(EXPECTED.values())} ({want}): is MSP_IMPROV={root} complete?", file=sys.stderr)

    tables = new_tables("spk2gender")
    bad_audio = []
    for clip in tqdm(sorted(kept), desc=PROG, unit="utt", disable=None):
        sent, _, gender, session, scenario, _ = CLIP_ID.match(clip).groups()
        name = f"MSP-IMPROV-{clip}"
        path = index.get(name)
        dur = probe_or_note(path, bad_audio, shown=path or name + ".wav")
        if dur is None:
            continue
        spk = f"{gender}{session}"
        utt = f"{spk}-{name}"
        text = sentences.get(f"S{sent}", "") if scenario in TEXT_SCENARIOS else ""
        add_utterance(tables, utt, os.path.abspath(path), spk, text or UNKNOWN_TEXT, kept[clip], dur)
        tables["spk2gender"][spk] = gender.lower()
    check_probed(tables, bad_audio, PROG, f"MSP_IMPROV={root}: none of the {len(kept)} labelled clips has a "
                 "WAV file MSP-IMPROV-<id>.wav under Audio/")
    speakers = set(tables["utt2spk"].values())
    if len(speakers) != NUM_SPEAKERS:
        warn(f"{len(speakers)} speakers ({' '.join(sorted(speakers))}), the release has {NUM_SPEAKERS}")

    write_data_dir(args.data_dir, tables)
    print(f"{PROG}: {data_summary(args.data_dir, tables, counts=True)} "
          f"from {label_file}")
    if dropped:
        print(f"{PROG}: not used: " + ", ".join(f"{k} {n}" for k, n in sorted(dropped.items())))
    return 0


if __name__ == "__main__":
    run_main(main)
