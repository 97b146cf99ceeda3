"""Mel segments of one fold's TRAINING utterances, with their condition strings.

The diffusion model of a fold may only see that fold's train.list: its synthetic data augments
the classifier of the same fold, so valid/test utterances (and speakers) must stay unseen.
`fold_training_utterances` applies the classifier's fold checks (ser.data.fold_check: lists
disjoint, no training utterance of a valid/test speaker) and returns train.list; nothing else is
trained on. Only the diagnostics (`load_diagnostic_segments`) read valid.list utterances, to
evaluate the trained model on held-out speakers; test.list is never read.

Segments: the (T, n_mels) mel matrix of an utterance, values already in [-1, 1], is cut into
`length`-frame windows (the classifier's segment starts, ser.runtime.segments) and transposed to
(n_mels, length), the layout of the 1-D convolutional denoiser. A window running past the end is
padded with `pad_value`, -1 by default: in the scaled mel, -1 is ln(mel_floor), i.e. digital
silence, which is what the end of a recording continues with. (The classifier pads with 0 AFTER
mean/variance normalisation, i.e. with its mean frame; 0 in the raw scaled mel would be a loud
frame, not silence.)

Each segment is conditioned on condition_text(sentence, emotion, speaker) of its utterance.
"""
import os
from dataclasses import dataclass

import numpy as np

from ser.data.fold_check import check_fold_lists
from ser.data.fold_dir import list_path, read_fold_lists, read_utt_list
from ser.data.kvfile import read_kv
from ser.diffusion.conditioning import condition_text
from ser.errors import SerError
from ser.runtime.segments import segment_matrix
from ser.training.dataset import iter_matrices

#: tolerance for "values in [-1, 1]" (float32 rounding of the scaling)
RANGE_TOL = 1e-4


def fold_training_utterances(feats_dir, fold_dir):
    """train.list of `fold_dir` after the classifier's fold checks (SerError on a leak)."""
    lists = read_fold_lists(fold_dir)
    check_fold_lists(feats_dir, fold_dir, lists)
    return lists["train"]


def check_mel_range(mat, where):
    """SerError unless every value is in [-1, 1] (the scaled mel of ser.features.mel)."""
    lo, hi = float(np.min(mat)), float(np.max(mat))
    if lo < -1.0 - RANGE_TOL or hi > 1.0 + RANGE_TOL or not np.isfinite([lo, hi]).all():
        raise SerError(f"{where}: values span [{lo:.3g}, {hi:.3g}], expected the [-1, 1] scaled mel "
                       f"(features of type 'mel')")


def read_texts(text_dir, utts):
    """(utt2emo, utt2spk, utt2text) of `utts` from text_dir (text optional: empty sentences)."""
    tables = {}
    for name in ("utt2emo", "utt2spk"):
        path = os.path.join(text_dir, name)
        tables[name] = read_kv(path)
        missing = [u for u in utts if u not in tables[name]]
        if missing:
            raise SerError(f"{path}: no entry for training utterance '{missing[0]}'")
    text_path = os.path.join(text_dir, "text")
    if os.path.isfile(text_path):
        text = read_kv(text_path, allow_empty=True)
        missing = [u for u in utts if u not in text]
        if missing:
            raise SerError(f"{text_path}: no transcript for training utterance '{missing[0]}'")
    else:
        text = {u: "" for u in utts}
    return ({u: tables["utt2emo"][u] for u in utts}, {u: tables["utt2spk"][u] for u in utts},
            {u: " ".join(text[u].split()) for u in utts})


@dataclass
class MelSegments:
    """Training segments of one fold."""
    segments: np.ndarray          # (N, n_mels, length) float32 in [-1, 1]
    segment_utts: list            # utterance of each segment
    conditions: list              # condition string of each segment
    utts: list                    # the training utterances (train.list order)
    emotion: dict                 # utt -> emotion label
    speaker: dict                 # utt -> speaker id
    text: dict                    # utt -> sentence (white space normalised)

    @property
    def n_mels(self):
        return self.segments.shape[1]

    def combinations(self):
        """Sorted unique (speaker, emotion, sentence) triples of the training utterances."""
        return sorted({(self.speaker[u], self.emotion[u], self.text[u]) for u in self.utts})


def load_training_segments(feats_dir, fold_dir, text_dir=None, length=256, shift=128, pad_value=-1.0):
    """The mel segments of `fold_dir`'s train.list (and only those) with their conditions."""
    utts = fold_training_utterances(feats_dir, fold_dir)
    emotion, speaker, text = read_texts(text_dir or feats_dir, utts)
    scp = os.path.join(feats_dir, "feats.scp")
    segs, seg_utts, conds = [], [], []
    dims = set()
    for utt, mat in iter_matrices(feats_dir, utts, "training utterance"):
        check_mel_range(mat, f"{scp}: '{utt}'")
        dims.add(mat.shape[1])
        cut = segment_matrix(mat, length, shift, pad_value).transpose(0, 2, 1)   # (n, D, L)
        segs.append(cut)
        seg_utts += [utt] * len(cut)
        conds += [condition_text(text[utt], emotion[utt], speaker[utt])] * len(cut)
    if len(dims) != 1:
        raise SerError(f"{scp}: feature dimensions differ between training utterances: {sorted(dims)}")
    assert set(seg_utts) <= set(utts)      # only train.list utterances are ever used
    return MelSegments(np.ascontiguousarray(np.concatenate(segs)), seg_utts, conds, list(utts),
                       emotion, speaker, text)


def write_combinations(path, combos):
    """combinations.tsv: speaker <TAB> emotion <TAB> sentence, one triple per line."""
    from ser.data.atomic import atomic_write_text
    for c in combos:
        if any("\t" in x or "\n" in x for x in c):
            raise SerError(f"combination {c!r} contains a tab or newline")
    atomic_write_text(path, "".join("\t".join(c) + "\n" for c in combos))


def read_combinations(path):
    """The triples written by write_combinations."""
    combos = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or not parts[0] or not parts[1]:
                raise SerError(f"{path}:{lineno}: expected speaker<TAB>emotion<TAB>sentence")
            combos.append(tuple(parts))
    if not combos:
        raise SerError(f"{path}: no combinations")
    return combos


@dataclass
class DiagnosticSegments:
    """Real segments the diagnostics compare with (ser.diffusion.diagnostics)."""
    segments: np.ndarray          # (N, n_mels, length) float32 in [-1, 1]
    conditions: list              # condition string of each segment
    emotions: list                # emotion of each segment
    source: str                   # "valid" (the fold's validation speakers) or "train"
    sample_conditions: dict       # emotion -> TRAINING condition strings (samples use seen speakers)
    pad_value: float = -1.0


def load_diagnostic_segments(feats_dir, fold_dir, text_dir, training, length=256, shift=128, pad_value=-1.0):
    """The fold's valid.list segments for the diagnostics (never trained on); when the feats dir
    holds none of them (e.g. a training-only copy), the training segments `training`
    (MelSegments) stand in, with source "train"."""
    import kaldiio
    scp = os.path.join(feats_dir, "feats.scp")
    table = kaldiio.load_scp(scp)
    valid = [u for u in read_utt_list(list_path(fold_dir, "valid")) if u in table]
    by_emotion = {}
    for utt, cond in zip(training.segment_utts, training.conditions):
        by_emotion.setdefault(training.emotion[utt], []).append(cond)
    if not valid:
        return DiagnosticSegments(training.segments, list(training.conditions),
                                  [training.emotion[u] for u in training.segment_utts], "train", by_emotion,
                                  pad_value)
    emotion, speaker, text = read_texts(text_dir or feats_dir, valid)
    segs, conds, emos = [], [], []
    for utt in valid:
        mat = np.asarray(table[utt], dtype=np.float32)
        check_mel_range(mat, f"{scp}: '{utt}'")
        cut = segment_matrix(mat, length, shift, pad_value).transpose(0, 2, 1)
        segs.append(cut)
        conds += [condition_text(text[utt], emotion[utt], speaker[utt])] * len(cut)
        emos += [emotion[utt]] * len(cut)
    return DiagnosticSegments(np.ascontiguousarray(np.concatenate(segs)), conds, emos, "valid", by_emotion, pad_value)
