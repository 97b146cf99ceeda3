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

Adaptation (paper 2, section 5.2.2 and Figure 4; make_adaptation_fold): a `test_fraction` (50 %)
of the target is the test set, and `adapt_fraction` F (0 .. 50 %) of the target corpus, drawn
from the other half, is added to the training data. The test part is the same for every F, and
the added sets are nested (the utterances added for 0.1 are among those added for 0.2): per class
one seeded permutation of the other half, of which the first round(F n_c) are taken. The test
part is chosen by `unit`:
- "speaker" (default): whole target speakers, picked so that every class is as close as possible
  to test_fraction of its utterances (exhaustive over the speaker subsets for <= 16 speakers,
  else a seeded local search); no test speaker is ever in training, so ser.bin.train's leakage
  check accepts the fold. For a corpus whose speakers have the same class counts (RAVDESS) each
  class is split exactly.
- "utterance": a random, emotion-stratified test_fraction of the utterances (the paper's "50 %
  of the samples"; exact per class). A test speaker then usually also has utterances in the added
  data, which ser.bin.train refuses for F > 0 (ser/training/dataset.py: no training utterance of
  a valid/test speaker).
Model selection (valid.list) uses `src_valid_speakers` random SOURCE speakers, held out from
training: the paper does not say what it validated on; the target's other half is entirely
training data at F = 50 %, and a target validation set would make F = 0 see target labels.
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


def _common_classes(src, tgt, classes, src_name, tgt_name):
    """(sorted classes, {source utt: label}, {target utt: label}) restricted to `classes`, after
    checking that the corpora share no utterance or speaker id and both have every class."""
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
    return classes, s_kept, t_kept


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
    classes, s_kept, t_kept = _common_classes(src, tgt, classes, src_name, tgt_name)
    (s_spk, s_emo), (t_spk, t_emo) = src, tgt
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


def round_half_up(x):
    return int(np.floor(x + 0.5))


def _check_fraction(name, value, low, high):
    if not low <= value <= high:
        raise SerError(f"{name} must be in [{low:g}, {high:g}], got {value:g}")


def _class_matrix(utt2spk, utt2emo, classes):
    """(speakers C-sorted, (S, C) int matrix of utterance counts per speaker and class)."""
    speakers = c_sorted(set(utt2spk[u] for u in utt2emo))
    row = {s: i for i, s in enumerate(speakers)}
    col = {c: j for j, c in enumerate(classes)}
    m = np.zeros((len(speakers), len(classes)), dtype=np.int64)
    for u, e in utt2emo.items():
        m[row[utt2spk[u]], col[e]] += 1
    return speakers, m


def _imbalance(sums, target, totals):
    """Squared relative deviation of per-class sums from the target counts (rows: candidates)."""
    return (((sums - target) / totals) ** 2).sum(axis=-1)


EXHAUSTIVE_SPEAKERS = 16


def balanced_speaker_subset(counts, fraction, rng, restarts=64):
    """Indices (sorted) of the rows of `counts` (speakers x classes) whose column sums are closest
    to `fraction` of the column totals (the squared relative deviation summed over classes).
    Exhaustive for <= EXHAUSTIVE_SPEAKERS speakers (ties broken with rng), else the best of
    `restarts` seeded local searches (greedy additions in a random order, then flips of one
    speaker and swaps of two while they improve)."""
    counts = np.asarray(counts, dtype=np.float64)
    n_spk = counts.shape[0]
    totals = np.maximum(counts.sum(axis=0), 1.0)
    target = fraction * counts.sum(axis=0)
    if n_spk <= EXHAUSTIVE_SPEAKERS:
        masks = (np.arange(2 ** n_spk)[:, None] >> np.arange(n_spk)[None, :]) & 1
        cost = _imbalance(masks @ counts, target, totals)
        best = np.flatnonzero(cost <= cost.min() + 1e-12)
        return [int(i) for i in np.flatnonzero(masks[best[rng.integers(len(best))]])]
    best_cost, best_sel = np.inf, None
    for _ in range(restarts):
        sel = np.zeros(n_spk, dtype=bool)
        sums = np.zeros(counts.shape[1])
        cost = _imbalance(sums, target, totals)
        for i in rng.permutation(n_spk):          # greedy: add while it helps
            c = _imbalance(sums + counts[i], target, totals)
            if c < cost:
                sel[i], sums, cost = True, sums + counts[i], c
        while True:                                # local search: flip one speaker or swap two
            sign = np.where(sel, -1.0, 1.0)[:, None]
            flip = _imbalance(sums[None, :] + sign * counts, target, totals)
            i = int(np.argmin(flip))
            if flip[i] < cost - 1e-12:
                sel[i] = not sel[i]
                sums, cost = sums + sign[i, 0] * counts[i], flip[i]
                continue
            ins, outs = np.flatnonzero(sel), np.flatnonzero(~sel)
            if len(ins) == 0 or len(outs) == 0:
                break
            swap = _imbalance(sums[None, None, :] - counts[ins][:, None, :] + counts[outs][None, :, :],
                              target, totals)
            a, b = np.unravel_index(int(np.argmin(swap)), swap.shape)
            if swap[a, b] >= cost - 1e-12:
                break
            sel[ins[a]], sel[outs[b]] = False, True
            sums, cost = sums - counts[ins[a]] + counts[outs[b]], swap[a, b]
        if cost < best_cost - 1e-12:
            best_cost, best_sel = cost, sel.copy()
    return [int(i) for i in np.flatnonzero(best_sel)]


def split_adaptation_target(utt2spk, utt2emo, classes, test_fraction, seed, unit="speaker"):
    """(test, rest): C-sorted target utterances (labelled with `classes`) of the test part and of
    the adaptation pool; independent of the adaptation fraction (numpy default_rng(seed))."""
    if unit == "utterance":
        return split_stratified(utt2emo, classes, test_fraction, seed)
    if unit != "speaker":
        raise SerError(f"--adapt-unit must be 'speaker' or 'utterance', not '{unit}'")
    speakers, counts = _class_matrix(utt2spk, utt2emo, classes)
    if len(speakers) < 2:
        raise SerError(f"a speaker-level test split needs at least 2 target speakers, found {len(speakers)}")
    chosen = balanced_speaker_subset(counts, test_fraction, np.random.default_rng(seed))
    test_spk = {speakers[i] for i in chosen}
    test = c_sorted(u for u in utt2emo if utt2spk[u] in test_spk)
    rest = c_sorted(u for u in utt2emo if utt2spk[u] not in test_spk)
    return test, rest


def adaptation_subset(utt2emo, pool, classes, adapt_fraction, seed):
    """The first round(adapt_fraction * n_c) utterances (at most all of the pool) of a seeded
    permutation of each class's pool, n_c the class's size in the whole target (utt2emo): nested
    in adapt_fraction for a fixed seed. C-sorted."""
    rng = np.random.default_rng([seed, 2])     # a stream of its own: the test split does not move
    total = {c: sum(1 for e in utt2emo.values() if e == c) for c in classes}
    added = []
    for c in c_sorted(classes):
        utts = c_sorted(u for u in pool if utt2emo[u] == c)
        order = rng.permutation(len(utts))
        k = min(round_half_up(adapt_fraction * total[c]), len(utts))
        added += [utts[i] for i in order[:k]]
    return c_sorted(added)


def make_adaptation_fold(src, tgt, classes, test_fraction=0.5, adapt_fraction=0.0, seed=1,
                         unit="speaker", src_valid_speakers=1, src_name="source", tgt_name="target"):
    """The adaptation fold (module docstring) as a dict like make_cross_corpus_fold's, with the
    extra keys `adapt` (the added target utterances), `test_fraction`, `adapt_fraction` and
    counts train_source / train_target / valid / test."""
    _check_fraction("--test-fraction", test_fraction, 0.05, 0.95)
    _check_fraction("--adapt-fraction", adapt_fraction, 0.0, 1.0 - test_fraction + 1e-9)
    classes, s_kept, t_kept = _common_classes(src, tgt, classes, src_name, tgt_name)
    (s_spk, s_emo), (t_spk, t_emo) = src, tgt

    src_speakers = c_sorted(set(s_spk[u] for u in s_kept))
    if not 1 <= src_valid_speakers < len(src_speakers):
        raise SerError(f"--src-valid-speakers must be between 1 and {len(src_speakers) - 1} (the source "
                       f"{src_name} has {len(src_speakers)} speakers), got {src_valid_speakers}")
    rng = np.random.default_rng([seed, 1])
    valid_spk = {src_speakers[i] for i in rng.choice(len(src_speakers), src_valid_speakers, replace=False)}
    valid = c_sorted(u for u in s_kept if s_spk[u] in valid_spk)
    train_src = c_sorted(u for u in s_kept if s_spk[u] not in valid_spk)
    _check_classes({u: s_kept[u] for u in train_src}, classes, f"{src_name} without the validation speakers "
                   f"{' '.join(c_sorted(valid_spk))} (another --seed or fewer --src-valid-speakers)")

    test, rest = split_adaptation_target(t_spk, t_kept, classes, test_fraction, seed, unit)
    _check_classes({u: t_kept[u] for u in test}, classes, f"{tgt_name} test part")
    added = adaptation_subset(t_kept, rest, classes, adapt_fraction, seed)
    train = c_sorted(train_src + added)
    return {
        "fold": 1,
        "test_speakers": c_sorted({t_spk[u] for u in test}),
        "valid_speakers": c_sorted(valid_spk),
        "train_speakers": c_sorted({s_spk[u] for u in train_src} | {t_spk[u] for u in added}),
        "train": train, "valid": valid, "test": test, "adapt": added,
        "test_fraction": test_fraction, "adapt_fraction": adapt_fraction, "unit": unit,
        "dropped": {"source": class_counts(s_emo, [u for u in s_emo if u not in s_kept]),
                    "target": class_counts(t_emo, [u for u in t_emo if u not in t_kept])},
        "counts": {"train_source": class_counts(s_emo, train_src), "train_target": class_counts(t_emo, added),
                   "valid": class_counts(s_emo, valid), "test": class_counts(t_emo, test),
                   "target": class_counts(t_emo, list(t_kept))},
    }
