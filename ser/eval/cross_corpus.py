"""A cross-corpus fold: train on one corpus, select models on 30 % of another, test on the rest.

Paper 1 (section 5.4, after Latif et al. [36]): the model is trained on the whole source corpus,
and a random 30 % of the target corpus is the development (validation) set used for model
selection; the other 70 % is the test set. Both corpora are reduced to a common label set
(the 4 classes anger, happiness, neutral, sadness); utterances of other labels are dropped.

The split of the target is random at the utterance level, as in the paper, stratified by
emotion: each class c with n_c utterances gives round(dev_fraction * n_c) utterances to the
development set (at least one to each side when n_c >= 2). A target speaker therefore usually
has utterances in both the development and the test set; that is the paper's protocol (the
speakers are all unseen in training, which is what cross-corpus tests). The split depends only
on the seed and on the target's utterance ids and labels.

The fold is written in the layout of the leave-one-speaker-out folds (ser.eval.folds), as fold 1.
"""
import numpy as np

from ser.data.kvfile import c_sorted
from ser.errors import SerError


def class_counts(utt2emo, utts):
    """{label: count} of `utts` (C-sorted labels)."""
    counts = {}
    for u in utts:
        counts[utt2emo[u]] = counts.get(utt2emo[u], 0) + 1
    return {c: counts[c] for c in c_sorted(counts)}


def num_dev(n, dev_fraction):
    """Development utterances of a class of n: round(fraction * n) (halves up), but at least one
    in each of dev and test when n >= 2."""
    k = int(np.floor(dev_fraction * n + 0.5))
    if n >= 2:
        k = min(max(k, 1), n - 1)
    return k


def split_stratified(utt2emo, classes, dev_fraction, seed):
    """(dev, test): C-sorted utterance lists of the target's utterances labelled with `classes`,
    split per class at random (numpy default_rng(seed), classes in C order)."""
    if not 0.0 < dev_fraction < 1.0:
        raise SerError(f"--dev-fraction must be between 0 and 1 (exclusive), got {dev_fraction}")
    rng = np.random.default_rng(seed)
    dev, test = [], []
    for c in c_sorted(classes):
        utts = c_sorted(u for u, e in utt2emo.items() if e == c)
        order = rng.permutation(len(utts))
        k = num_dev(len(utts), dev_fraction)
        dev += [utts[i] for i in order[:k]]
        test += [utts[i] for i in order[k:]]
    return c_sorted(dev), c_sorted(test)


def _check_disjoint(src, tgt, what, src_name, tgt_name):
    both = c_sorted(set(src) & set(tgt))
    if both:
        raise SerError(f"{what} '{both[0]}' is in both {src_name} and {tgt_name} ({len(both)} shared); "
                       f"prefix the ids with the corpus name (utils/copy_data_dir.py --utt-prefix "
                       f"<corpus>- --spk-prefix <corpus>-)")


def _check_classes(utt2emo, classes, name):
    present = set(utt2emo.values())
    missing = [c for c in c_sorted(classes) if c not in present]
    if missing:
        raise SerError(f"{name}: no utterance of class '{missing[0]}' (labels there: "
                       f"{' '.join(c_sorted(present))}); drop it from --classes")


def make_cross_corpus_fold(src, tgt, classes, dev_fraction=0.3, seed=1,
                           src_name="source", tgt_name="target"):
    """The cross-corpus fold as a dict in the format of ser.eval.folds.make_loso_folds' folds.

    src, tgt: (utt2spk, utt2emo) of the source and target corpus. Raises SerError when the two
    share an utterance or speaker id, or when a class has no utterance in either corpus.
    Extra keys: `dropped` {"source"/"target": {label: count}} and `counts`
    {"train"/"valid"/"test": {label: count}}.
    """
    classes = c_sorted(set(classes))
    if len(classes) < 2:
        raise SerError(f"--classes needs at least 2 labels, got {len(classes)}")
    (s_spk, s_emo), (t_spk, t_emo) = src, tgt
    _check_disjoint(s_spk, t_spk, "utterance", src_name, tgt_name)
    _check_disjoint(set(s_spk.values()), set(t_spk.values()), "speaker", src_name, tgt_name)
    keep = set(classes)
    s_kept = {u: e for u, e in s_emo.items() if e in keep}
    t_kept = {u: e for u, e in t_emo.items() if e in keep}
    _check_classes(s_kept, classes, src_name)
    _check_classes(t_kept, classes, tgt_name)
    train = c_sorted(s_kept)
    valid, test = split_stratified(t_kept, classes, dev_fraction, seed)
    return {
        "fold": 1,
        "test_speakers": c_sorted({t_spk[u] for u in test}),
        "valid_speakers": c_sorted({t_spk[u] for u in valid}),
        "train_speakers": c_sorted({s_spk[u] for u in train}),
        "train": train, "valid": valid, "test": test,
        "dropped": {"source": class_counts(s_emo, [u for u in s_emo if u not in s_kept]),
                    "target": class_counts(t_emo, [u for u in t_emo if u not in t_kept])},
        "counts": {"train": class_counts(s_emo, train), "valid": class_counts(t_emo, valid),
                   "test": class_counts(t_emo, test)},
    }
