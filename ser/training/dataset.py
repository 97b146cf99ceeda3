"""Data of one fold for training: features, labels, leakage checks, normalisation, segments.

Inputs (see the training contract):
- `--feats-dir`: a data dir with feats.scp (kaldiio), utt2spk, utt2emo and optionally conf.yaml
  (the feature config, stored in the model);
- `--fold-dir`: train.list, valid.list, test.list (utterance ids) and optionally info.yaml
  (test_speakers, valid_speakers);
- `--classes`: classes.txt, one label per line, the output order of every model;
- `--aug-dirs`: data dirs of augmented copies (e.g. speed perturbation) with feats.scp and
  utt2uniq (copy -> source utterance).

The training set is train.list plus the augmented copies of train.list utterances; a copy takes
its source's label. Checks, each a SerError naming the utterance:
- train.list shares no utterance with valid.list/test.list, and no train utterance belongs to a
  valid or test speaker (ser.data.fold_check.check_fold_lists; the fold dir is read through
  ser.data.fold_dir);
- every augmented copy has a utt2uniq source; a copy whose source is not in train.list is
  refused (policy "refuse", the default: an augmentation dir must hold copies of this fold's
  training utterances only) or skipped (policy "select": a dir of copies of the whole corpus,
  from which this fold's training copies are taken);
- a copy taken for training whose id or speaker, stripped of augmentation prefixes
  (`sp1.1-03-03a01Fa` -> `03-03a01Fa`, `sp1.1-03` -> `03`), names a valid/test utterance or
  speaker is refused under both policies (a utt2uniq that contradicts the copy's name).

Synthetic data (`--synthetic-dirs`, written by ser.bin.generate: feats.scp, utt2spk, utt2emo,
model_train.list) has no source utterance. A synthetic dir is accepted only when every utterance
is conditioned on (utt2spk) a TRAINING speaker of the fold, its id is not a real utterance id,
its label is a class, and the diffusion model that generated it was trained on this fold's
train.list utterances only (model_train.list); anything else is refused. `train_source` says what
the model trains on: "real" (train.list + augmented copies), "synthetic" (the synthetic dirs
only: paper 2, Table 2; validation stays real) or "both"; default "both" with synthetic dirs,
"real" without. A fold may list, in `adapt.list`, real training utterances that every source
keeps: the target-corpus data added for adaptation (paper 2, Figure 4: synthetic source data +
0-50 % of the target); they must be in train.list.

A refit (`refit=True`, ser.training.refit) checks the fold as above, then trains on train.list +
valid.list with no validation set; augmented copies of validation utterances are then training
copies, and only the test speakers stay held out.
"""
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from ser.data.feats_io import ScpReader
from ser.data.fold_check import check_fold_lists, held_out_speakers, strip_to_known
from ser.data.fold_dir import adaptation_utts, list_path, read_classes, read_fold_lists, read_utt_list
from ser.data.kvfile import read_kv
from ser.errors import SerError
from ser.runtime.config import config_diff, read_yaml
from ser.runtime.segments import cut_segment, segment_matrix, segment_starts
from ser.training import normalization

AUG_POLICIES = ("refuse", "select")
TRAIN_SOURCES = ("real", "synthetic", "both")


def read_feat_conf(feats_dir):
    """The feature config `<feats_dir>/conf.yaml` as a dict ({} if absent)."""
    path = os.path.join(feats_dir, "conf.yaml")
    if not os.path.exists(path):
        return {}
    conf = read_yaml(path) or {}
    if not isinstance(conf, dict):
        raise SerError(f"{path}: expected a mapping")
    return conf


def refuse_other_feature_config(feats_dir, reference, but):
    """SerError when `feats_dir`'s feature config (conf.yaml) differs from `reference`, compared as
    parsed YAML: '<conf.yaml>: <key> is <its value>, but ' + but(<the reference's value>). Nothing to
    compare when either is empty (a feats dir without conf.yaml)."""
    found = read_feat_conf(feats_dir)
    differing = config_diff(reference, found) if reference and found else []
    if differing:
        key, expected, value = differing[0]
        more = f" (and {len(differing) - 1} more)" if len(differing) > 1 else ""
        raise SerError(f"{os.path.join(feats_dir, 'conf.yaml')}: {key} is {value!r}{more}, but {but(expected)}")


def check_trained_features(model_path, trained_conf, feats_dir):
    """SerError unless `feats_dir`'s feature config (conf.yaml) is `trained_conf`, the one the model
    at `model_path` was trained on (its meta feat_conf): features recomputed with another config
    since the training (same dir, same dimension) must not meet its weights and normalisation
    statistics."""
    refuse_other_feature_config(feats_dir, trained_conf, lambda v: (
        f"{model_path} was trained on features with {v!r}: the features were computed with another config "
        f"since; train the model again on them (move its run dir away) or use features of its config"))


def check_training_copies(feats_dir, conf, copy_dirs):
    """SerError unless every augmentation or synthetic dir in `copy_dirs` holds features of the
    training data's config `conf` (read from `feats_dir`/conf.yaml): a copy made before the features
    were recomputed with another config (speed-perturbed copies, a diffusion model's samples) must
    not join them."""
    path = os.path.join(feats_dir, "conf.yaml")
    for d in copy_dirs:
        refuse_other_feature_config(d, conf, lambda v: (
            f"the training features {path} have {v!r}: the copies were made with another feature config "
            f"(compute or generate them again)"))


def iter_matrices(feats_dir, utts, what="utterance"):
    """(utt, float32 (T, D) matrix) for each of `utts` in turn, read through
    `<feats_dir>/feats.scp`; SerError naming the scp when one has no features (`what` names the
    kind of utterance in the message) or is not a non-empty matrix."""
    scp = os.path.join(feats_dir, "feats.scp")
    table = ScpReader(scp)  # unreadable matrices: one-line errors naming scp:line and ark
    for utt in utts:
        if utt not in table:
            raise SerError(f"{scp}: no features for {what} '{utt}'")
        mat = np.asarray(table[utt], dtype=np.float32)
        if mat.ndim != 2 or mat.shape[0] == 0:
            raise SerError(f"{scp}: features of '{utt}' have shape {mat.shape}, expected (frames > 0, dims)")
        yield utt, mat


def load_matrices(feats_dir, utts):
    """dict utt -> float32 (T, D) matrix for `utts`, read through `<feats_dir>/feats.scp`."""
    return dict(iter_matrices(feats_dir, utts))


@dataclass
class FoldData:
    """Raw (unnormalised) matrices and integer labels of one fold's training and validation sets."""
    classes: list
    train: dict                      # utt -> (T, D) float32, augmented copies included
    train_labels: dict               # utt -> class index
    train_source: dict               # utt -> source utterance (itself for an original)
    valid: dict
    valid_labels: dict
    feat_dim: int
    feat_conf: dict = field(default_factory=dict)
    synthetic: list = field(default_factory=list)    # ids of the synthetic training utterances


def resolve_train_source(train_source, synthetic_dirs):
    """The training source (see the module docstring); SerError for a contradiction."""
    if train_source is None:
        return "both" if synthetic_dirs else "real"
    if train_source not in TRAIN_SOURCES:
        raise SerError(f"unknown training source {train_source!r} (choose from {', '.join(TRAIN_SOURCES)})")
    if train_source == "real" and synthetic_dirs:
        raise SerError("synthetic dirs given with training source 'real' (use 'both' or 'synthetic')")
    if train_source != "real" and not synthetic_dirs:
        raise SerError(f"training source '{train_source}' needs synthetic dirs (--synthetic-dirs)")
    return train_source


def load_synthetic(syn_dir, fold_dir, train, utt2spk, held_out, label_of, taken):
    """{utt: matrix} and {utt: class index} of a synthetic data dir, after the checks of the
    module docstring. `taken`: ids already in the training set; `label_of(label, where)`."""
    train_list = list_path(fold_dir, "train")
    model_list = os.path.join(syn_dir, "model_train.list")
    if not os.path.exists(model_list):
        raise SerError(f"synthetic dir {syn_dir} has no model_train.list (the training utterances of the "
                       f"diffusion model), so it cannot be checked against {train_list}")
    train_set = set(train)
    for utt in read_utt_list(model_list):
        if utt not in train_set:
            raise SerError(f"{model_list}: the diffusion model of {syn_dir} was trained on '{utt}', which is "
                           f"not in {train_list}")
    train_speakers = {utt2spk[u] for u in train}
    syn_spk_path, syn_emo_path = os.path.join(syn_dir, "utt2spk"), os.path.join(syn_dir, "utt2emo")
    syn_spk, syn_emo = read_kv(syn_spk_path), read_kv(syn_emo_path)
    labels = {}
    for utt in read_kv(os.path.join(syn_dir, "feats.scp")):
        if utt not in syn_spk:
            raise SerError(f"{syn_spk_path}: no speaker for synthetic utterance '{utt}'")
        spk = syn_spk[utt]
        if spk in held_out:
            raise SerError(f"{syn_dir}: synthetic utterance '{utt}' is conditioned on speaker '{spk}', "
                           f"a valid/test speaker of {fold_dir}")
        if spk not in train_speakers:
            raise SerError(f"{syn_dir}: synthetic utterance '{utt}' is conditioned on speaker '{spk}', "
                           f"not a training speaker of {fold_dir}")
        if utt in utt2spk or utt in taken:
            raise SerError(f"{syn_dir}: synthetic utterance id '{utt}' is already used by a real or "
                           f"training utterance")
        if utt not in syn_emo:
            raise SerError(f"{syn_emo_path}: no emotion label for synthetic utterance '{utt}'")
        labels[utt] = label_of(syn_emo[utt], f"{syn_emo_path}: label '{syn_emo[utt]}' of '{utt}'")
    return load_matrices(syn_dir, list(labels)), labels


def load_fold(feats_dir, fold_dir, classes_path, aug_dirs=(), aug_policy="refuse", synthetic_dirs=(),
              train_source=None, refit=False):
    """Read and check one fold's training/validation data (see the module docstring). With `refit`
    the fold is checked as it is and the validation utterances then join the training set (no
    validation set is left; ser.training.refit)."""
    train_source = resolve_train_source(train_source, synthetic_dirs)
    if refit and synthetic_dirs:
        raise SerError("a refit run trains on real data only: its synthetic data was generated for train.list")
    if train_source == "synthetic" and aug_dirs:
        raise SerError("training source 'synthetic' cannot use augmented copies of real utterances (--aug-dirs)")
    if aug_policy not in AUG_POLICIES:
        raise SerError(f"unknown augmentation policy {aug_policy!r} (choose from {', '.join(AUG_POLICIES)})")
    feat_conf = read_feat_conf(feats_dir)
    check_training_copies(feats_dir, feat_conf, list(aug_dirs) + list(synthetic_dirs))
    classes = read_classes(classes_path)
    class_index = {c: i for i, c in enumerate(classes)}
    lists = read_fold_lists(fold_dir)
    train, valid, test = lists["train"], lists["valid"], lists["test"]
    utt2spk, held_out = check_fold_lists(feats_dir, fold_dir, lists)
    if refit:
        train, valid = train + valid, []
        held_out = held_out_speakers(fold_dir, utt2spk, [], test, keys=("test_speakers",))

    utt2emo_path = os.path.join(feats_dir, "utt2emo")
    utt2emo = read_kv(utt2emo_path)

    def label(utt):
        if utt not in utt2emo:
            raise SerError(f"{utt2emo_path}: no emotion label for '{utt}'")
        if utt2emo[utt] not in class_index:
            raise SerError(f"{utt2emo_path}: label '{utt2emo[utt]}' of '{utt}' is not in {classes_path}")
        return class_index[utt2emo[utt]]

    train_labels = {u: label(u) for u in train}
    valid_labels = {u: label(u) for u in valid}
    real_train = train if train_source != "synthetic" else adaptation_utts(fold_dir, train)
    train_mats = load_matrices(feats_dir, real_train)
    valid_mats = load_matrices(feats_dir, valid)
    train_labels = {u: train_labels[u] for u in real_train}
    source_of = {u: u for u in real_train}
    train_set = set(train)
    held_out_utts = set(valid) | set(test)
    speakers = set(utt2spk.values())

    for aug_dir in aug_dirs:
        uniq_path = os.path.join(aug_dir, "utt2uniq")
        if not os.path.exists(uniq_path):
            raise SerError(f"augmentation dir {aug_dir} has no utt2uniq (copy -> source utterance)")
        utt2uniq = read_kv(uniq_path)
        aug_spk_path = os.path.join(aug_dir, "utt2spk")
        aug_spk = read_kv(aug_spk_path) if os.path.exists(aug_spk_path) else {}
        scp = os.path.join(aug_dir, "feats.scp")
        chosen = []
        for utt in read_kv(scp):
            if utt not in utt2uniq:
                raise SerError(f"{uniq_path}: no source utterance for augmented copy '{utt}'")
            source = utt2uniq[utt]
            if source not in train_set:
                if aug_policy == "select":
                    continue
                raise SerError(f"{aug_dir}: augmented copy '{utt}' has source '{source}', which is not in "
                               f"{list_path(fold_dir, 'train')}")
            # utt2uniq says it is a training copy; its id (sp1.1-03-03a01Fa -> 03-03a01Fa) and its
            # speaker (sp1.1-03 -> 03) must not say otherwise
            id_origin = strip_to_known(utt, utt2spk)
            spk_origin = strip_to_known(aug_spk[utt], speakers) if utt in aug_spk else None
            bad = [x for x in (utt2spk.get(id_origin), spk_origin) if x in held_out]
            if id_origin in held_out_utts or bad:
                why = f"utterance '{id_origin}'" if id_origin in held_out_utts else f"speaker '{bad[0]}'"
                raise SerError(f"{aug_dir}: augmented copy '{utt}' (source '{source}' in {uniq_path}) is a copy of "
                               f"held-out (valid/test) {why} of {fold_dir}")
            if utt in source_of:
                raise SerError(f"{aug_dir}: augmented copy '{utt}' duplicates an utterance id already in the training set")
            chosen.append(utt)
            source_of[utt] = source
            train_labels[utt] = train_labels[source]
        train_mats.update(load_matrices(aug_dir, chosen))

    def class_of(value, where):
        if value not in class_index:
            raise SerError(f"{where} is not in {classes_path}")
        return class_index[value]

    synthetic = []
    for syn_dir in synthetic_dirs:
        mats, labels = load_synthetic(syn_dir, fold_dir, train, utt2spk, held_out, class_of, source_of)
        train_mats.update(mats)
        train_labels.update(labels)
        source_of.update({u: u for u in mats})
        synthetic += list(mats)

    dims = {m.shape[1] for m in list(train_mats.values()) + list(valid_mats.values())}
    if len(dims) != 1:
        raise SerError(f"feature dimensions differ between utterances: {sorted(dims)}")
    return FoldData(classes=classes, train=train_mats, train_labels=train_labels, train_source=source_of,
                    valid=valid_mats, valid_labels=valid_labels, feat_dim=dims.pop(),
                    feat_conf=feat_conf, synthetic=synthetic)


class SegmentSet(torch.utils.data.Dataset):
    """Training segments of normalised utterances: item k -> ((L, D) float tensor, class index).

    Only the utterance matrices are held; a segment is sliced when it is requested.
    """

    def __init__(self, mats, labels, length, shift):
        self.mats = list(mats)
        self.labels = list(labels)
        self.length = length
        self.index = [(i, s) for i, m in enumerate(self.mats) for s in segment_starts(m.shape[0], length, shift)]

    def __len__(self):
        return len(self.index)

    def segment_labels(self):
        """The class index of every segment, in item order."""
        return [self.labels[i] for i, _ in self.index]

    def __getitem__(self, k):
        i, start = self.index[k]
        return torch.from_numpy(cut_segment(self.mats[i], start, self.length)), self.labels[i]


@dataclass
class PreparedData:
    """Normalised, segmented data of a fold, ready for the training loop."""
    train_set: SegmentSet
    valid_segments: dict             # utt -> (n, L, D) float32
    valid_labels: dict               # utt -> class index
    cmvn_mean: np.ndarray
    cmvn_std: np.ndarray


def prepare(fold, length, shift, utterance_mvn=None):
    """Normalise with statistics of the training utterances (augmented copies included: they
    are what the model sees in training) and cut into segments. `utterance_mvn` ({means, vars},
    the training config's) first normalises every utterance by its own statistics."""
    train, valid = ({u: normalization.utterance_mvn(m, **(utterance_mvn or {})) for u, m in mats.items()}
                    for mats in (fold.train, fold.valid))
    mean, std = normalization.compute_stats(train.values())
    utts = list(train)
    train_set = SegmentSet([normalization.apply(train[u], mean, std) for u in utts],
                           [fold.train_labels[u] for u in utts], length, shift)
    valid_segments = {u: segment_matrix(normalization.apply(m, mean, std), length, shift)
                      for u, m in valid.items()}
    return PreparedData(train_set, valid_segments, dict(fold.valid_labels), mean, std)
