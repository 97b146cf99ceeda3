"""A tiny, learnable SER corpus for the training tests (not a test module itself).

4 speakers x 8 utterances of random (T in [40, 300], D = 16) matrices; each of the 3 classes adds
its own mean offset to a few dimensions, so a classifier can beat chance. Written with kaldiio
as a Kaldi data dir plus one LOSO-style fold (train s1 s2, valid s3, test s4). Also a
hand-written reference of the segmenting (`reference_segments`).
"""
import os

import kaldiio
import numpy as np
import torch
from torch import nn

CLASSES = ["anger", "neutral", "sadness"]
SPEAKERS = ["s1", "s2", "s3", "s4"]
DIM = 16


def class_offset(c):
    off = np.zeros(DIM, np.float32)
    off[4 * c:4 * c + 4] = 2.0
    return off


def write_table(path, table):
    with open(path, "w") as f:
        for k in sorted(table):
            f.write(f"{k} {table[k]}\n")


def write_feats(d, mats):
    """Write `mats` (utt -> matrix) as <d>/feats.ark + feats.scp."""
    os.makedirs(d, exist_ok=True)
    d = os.path.abspath(d)
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for utt in sorted(mats):
            w(utt, mats[utt])


def make_corpus(root, seed=0, offset_scale=1.0):
    """Write <root>/data (feats dir), <root>/fold (fold dir), <root>/classes.txt.

    Returns a dict with the matrices, labels and paths."""
    rng = np.random.default_rng(seed)
    mats, utt2spk, utt2emo, labels = {}, {}, {}, {}
    for spk in SPEAKERS:
        for i in range(8):
            utt = f"{spk}-u{i:02d}"
            c = i % len(CLASSES)
            T = int(rng.integers(40, 301))
            mats[utt] = (rng.normal(size=(T, DIM)) + offset_scale * class_offset(c) + 3.0).astype(np.float32)
            utt2spk[utt], utt2emo[utt], labels[utt] = spk, CLASSES[c], c
    data = os.path.join(root, "data")
    write_feats(data, mats)
    write_table(os.path.join(data, "utt2spk"), utt2spk)
    write_table(os.path.join(data, "utt2emo"), utt2emo)
    with open(os.path.join(data, "conf.yaml"), "w") as f:
        f.write("type: toy\ndim: 16\n")
    fold = os.path.join(root, "fold")
    os.makedirs(fold, exist_ok=True)
    split = {"train": ["s1", "s2"], "valid": ["s3"], "test": ["s4"]}
    lists = {}
    for name, spks in split.items():
        lists[name] = sorted(u for u in mats if utt2spk[u] in spks)
        with open(os.path.join(fold, f"{name}.list"), "w") as f:
            f.write("".join(u + "\n" for u in lists[name]))
    with open(os.path.join(fold, "info.yaml"), "w") as f:
        f.write("test_speakers: ['s4']\nvalid_speakers: ['s3']\n")
    classes = os.path.join(root, "classes.txt")
    with open(classes, "w") as f:
        f.write("".join(c + "\n" for c in CLASSES))
    return {"mats": mats, "labels": labels, "utt2spk": utt2spk, "lists": lists,
            "data": data, "fold": fold, "classes": classes}


def make_aug_dir(root, name, corpus, utts, prefix="sp1.1", seed=1, utt2uniq_override=None):
    """An augmentation dir with copies `<prefix>-<utt>` of `utts` (utt2uniq, utt2spk, feats)."""
    rng = np.random.default_rng(seed)
    d = os.path.join(root, name)
    mats = {f"{prefix}-{u}": (corpus["mats"][u] * 1.1 + rng.normal(scale=0.1, size=corpus["mats"][u].shape))
            .astype(np.float32) for u in utts}
    write_feats(d, mats)
    uniq = {f"{prefix}-{u}": u for u in utts}
    uniq.update(utt2uniq_override or {})
    write_table(os.path.join(d, "utt2uniq"), uniq)
    write_table(os.path.join(d, "utt2spk"), {f"{prefix}-{u}": f"{prefix}-{corpus['utt2spk'][u]}" for u in utts})
    return d, mats


class TinyNet(nn.Module):
    """Frame-wise MLP, averaged over time; dropout so that training draws random numbers."""

    def __init__(self, num_classes=3, feat_dim=DIM, hidden=8):
        super().__init__()
        self.layer = nn.Linear(feat_dim, hidden)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.out(self.drop(torch.relu(self.layer(x))).mean(dim=1))


def reference_segments(x, L, S):
    """Hand-written reference of ser.runtime.segments.segment_matrix: pad short, slide, end-align
    the last window."""
    T = len(x)
    if T <= L:
        out = np.zeros((1, L, x.shape[1]), np.float32)
        out[0, :T] = x
        return out
    starts = []
    s = 0
    while s + L <= T:
        starts.append(s)
        s += S
    if starts[-1] + L != T:
        starts.append(T - L)
    return np.stack([x[s:s + L] for s in starts]).astype(np.float32)
