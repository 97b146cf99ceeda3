#!/usr/bin/env python3
"""Writes a Kaldi data dir for IEMOCAP from the official release (`IEMOCAP_full_release`).

    prepare_iemocap.py [--four-class true|false] [--improvised-only true|false] IEMOCAP_DIR DATA_DIR

Reads, for each of Session1..Session5:
- labels:      SessionN/dialog/EmoEvaluation/<dialog>.txt, the turn lines
               `[START - END]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[V, A, D]` (categorical consensus
               label in the third field; the per-evaluator lines below each turn are not used);
- transcripts: SessionN/dialog/transcriptions/<dialog>.txt, lines `<utt> [START-END]: text`;
- audio:       SessionN/sentences/wav/<dialog>/<utt>.wav.
Speaker = session + gender letter of the utterance's own id (`Ses01F_impro01_M003` -> `Ses01M`),
utterance id `<speaker>-<original id>`. Labels: the 4 classes (exc merged into happiness) with
--four-class true, else every categorical label but `xxx` (no agreement). Details, counts and
what is uncertain: local/README.md.
"""
import argparse
import os
import re
import sys
from collections import Counter

from tqdm import tqdm

from ser.data.prepare import (add_corpus_args, add_utterance, check_probed, count_mismatch, data_summary,
                              new_tables, probe_or_note, summarize, write_data_dir)
from ser.errors import SerError, run_main

PROG = "prepare_iemocap.py"
SESSIONS = (1, 2, 3, 4, 5)

# Categorical labels of EmoEvaluation -> our names (EmoDB's where both have them).
ALL_CLASSES = {"ang": "anger", "hap": "happiness", "exc": "excitement", "sad": "sadness",
               "neu": "neutral", "fru": "frustration", "sur": "surprise", "fea": "fear",
               "dis": "disgust", "oth": "other"}
# The usual 4-class set: excitement is merged into happiness; fru, sur, fea, dis, oth dropped.
FOUR_CLASSES = {"ang": "anger", "hap": "happiness", "exc": "happiness", "sad": "sadness",
                "neu": "neutral"}
NO_AGREEMENT = "xxx"

# Labelled turns of the full release per class (10039 turns; 2507 xxx), as counted in the
# literature: the 4-class set is the well-known 5531 utterances.
EXPECTED_FOUR = {"anger": 1103, "happiness": 1636, "neutral": 1708, "sadness": 1084}
EXPECTED_ALL = {"anger": 1103, "happiness": 595, "excitement": 1041, "sadness": 1084,
                "neutral": 1708, "frustration": 1849, "surprise": 107, "fear": 40,
                "disgust": 2, "other": 3}

# `[6.2901 - 8.2357]  Ses01F_impro01_F000  neu  [2.5000, 2.5000, 2.5000]`, any white space.
LABEL_LINE = re.compile(r"^\[\s*\d+(?:\.\d*)?\s*-\s*\d+(?:\.\d*)?\s*\]\s+(\S+)\s+(\S+)")
# Ses01F_impro01_F000, Ses01M_script01_1_F012, Ses05F_script02_2_M041: the dialog, then the
# gender letter and index of the speaking actor.
UTT_ID = re.compile(r"^(Ses(\d\d)[FM]_\S+)_([FM])(\d+)$")
# `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`
TRANSCRIPT_LINE = re.compile(r"^(\S+)\s+\[[^\]]*\]\s*:\s?(.*)$")
UNKNOWN_TEXT = "<unk>"


def warn(msg):
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


def read_lines(path):
    """Lines of a text file without line ends; UTF-8, else Latin-1 (no decoding error)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def text_files(directory):
    """The *.txt files directly in `directory` (subdirs such as Categorical/ and macOS `._*`
    resource files are not label files), sorted."""
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.endswith(".txt") and not n.startswith(".")
                  and os.path.isfile(os.path.join(directory, n)))


def session_dirs(root):
    """Session number -> directory; SerError naming IEMOCAP when the root is not the release."""
    if not os.path.isdir(root):
        raise SerError(f"IEMOCAP={root}: no such directory (set IEMOCAP to the IEMOCAP_full_release "
                       "directory holding Session1..Session5)")
    missing = [f"Session{s}" for s in SESSIONS
               if not os.path.isdir(os.path.join(root, f"Session{s}", "dialog", "EmoEvaluation"))]
    if missing:
        raise SerError(f"IEMOCAP={root}: no {', '.join(m + '/dialog/EmoEvaluation' for m in missing)} "
                       "(set IEMOCAP to the IEMOCAP_full_release directory holding Session1..Session5)")
    return {s: os.path.join(root, f"Session{s}") for s in SESSIONS}


def parse_labels(sessions):
    """utt -> (label, dialog, session number, gender letter, session dir) from every EmoEvaluation
    file.

    Returns (labels, problems): problems lists 'file:line: message' of turn lines that could not
    be used (an unexpected utterance id, a conflicting duplicate).
    """
    labels, problems = {}, []
    for s, sdir in sessions.items():
        for path in text_files(os.path.join(sdir, "dialog", "EmoEvaluation")):
            for lineno, line in enumerate(read_lines(path), 1):
                m = LABEL_LINE.match(line.strip())
                if not m:
                    continue
                utt, label = m.group(1), m.group(2).lower()
                idm = UTT_ID.match(utt)
                if not idm:
                    problems.append(f"{path}:{lineno}: unexpected utterance id '{utt}'")
                    continue
                dialog, sess, gender = idm.group(1), int(idm.group(2)), idm.group(3)
                if utt in labels and labels[utt][0] != label:
                    problems.append(f"{path}:{lineno}: '{utt}' labelled '{label}' here, "
                                    f"'{labels[utt][0]}' before (first kept)")
                    continue
                labels.setdefault(utt, (label, dialog, sess, gender, sdir))
    return labels, problems


def parse_transcripts(sessions):
    """utt -> transcript (white space collapsed) from every transcription file."""
    texts = {}
    for sdir in sessions.values():
        for path in text_files(os.path.join(sdir, "dialog", "transcriptions")):
            for line in read_lines(path):
                m = TRANSCRIPT_LINE.match(line.strip())
                if m and UTT_ID.match(m.group(1)):
                    texts.setdefault(m.group(1), " ".join(m.group(2).split()))
    return texts


def count_warning(counts, expected, root):
    """One loud line when the per-class counts differ from the full release's."""
    mismatch = count_mismatch(counts, expected)
    if not mismatch:
        return
    found, want = mismatch
    print(f"{PROG}: WARNING: {sum(counts.values())} labelled utterances ({found}), the full IEMOCAP "
          f"release has {sum(expected.values())} ({want}): is IEMOCAP={root} complete?", file=sys.stderr)


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--improvised-only", choices=["true", "false"], default="false",
                   help="keep only the improvised dialogs (Ses*_impro*), not the scripted ones")
    add_corpus_args(p, "the IEMOCAP_full_release directory (holds Session1..Session5)",
                    four_class_help="anger, happiness (+excitement), neutral, sadness (the papers' 4 classes)")
    args = p.parse_args(argv)
    root = args.corpus
    classes = FOUR_CLASSES if args.four_class == "true" else ALL_CLASSES

    sessions = session_dirs(root)
    labels, problems = parse_labels(sessions)
    if not labels:
        raise SerError(f"IEMOCAP={root}: no labelled turns in Session*/dialog/EmoEvaluation/*.txt")
    if problems:
        warn(summarize(problems, "label lines skipped"))

    kept = {}
    dropped = Counter()
    for utt, (label, dialog, sess, gender, sdir) in labels.items():
        if label not in classes:
            dropped[label] += 1
            continue
        if args.improvised_only == "true" and "_impro" not in dialog:
            dropped["scripted"] += 1
            continue
        kept[utt] = (classes[label], dialog, sess, gender, sdir)
    counts = dict(Counter(v[0] for v in kept.values()))
    if args.improvised_only == "false":
        count_warning(counts, EXPECTED_FOUR if args.four_class == "true" else EXPECTED_ALL, root)

    texts = parse_transcripts(sessions)
    tables = new_tables("spk2gender")
    bad_audio, no_text = [], 0
    for utt in tqdm(sorted(kept), desc=PROG, unit="utt", disable=None):
        emotion, dialog, sess, gender, sdir = kept[utt]
        path = os.path.abspath(os.path.join(sdir, "sentences", "wav", dialog, utt + ".wav"))
        dur = probe_or_note(path, bad_audio)
        if dur is None:
            continue
        spk = f"Ses{sess:02d}{gender}"
        key = f"{spk}-{utt}"
        text = texts.get(utt) or ""
        if not text:
            no_text += 1
        add_utterance(tables, key, path, spk, text or UNKNOWN_TEXT, emotion, dur)
        tables["spk2gender"][spk] = gender.lower()
    check_probed(tables, bad_audio, PROG, f"IEMOCAP={root}: none of the {len(kept)} selected utterances has "
                 "audio in Session*/sentences/wav/<dialog>/<utt>.wav")

    write_data_dir(args.data_dir, tables)
    print(f"{PROG}: {data_summary(args.data_dir, tables, counts=True)}")
    if dropped:
        print(f"{PROG}: not used: " + " ".join(f"{k} {n}" for k, n in sorted(dropped.items())))
    if no_text:
        print(f"{PROG}: {no_text} utterances have no transcript: text '{UNKNOWN_TEXT}'")
    return 0


if __name__ == "__main__":
    run_main(main)
