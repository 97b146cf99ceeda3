"""Checks that folds are speaker-independent and that augmentation does not leak.

`check_fold_lists` checks the lists of one fold against a feats dir before training on it:
train.list shares no utterance with valid.list/test.list, and every training utterance has a
speaker (utt2spk) that is not a valid/test speaker of the fold (those of its valid/test
utterances and those named in info.yaml).

`check_folds` checks a whole folds directory (ser.bin.check_folds). For every fold:
train/valid/test are disjoint; test.list holds only the fold's test speaker(s) and valid.list
only its validation speaker(s); no utterance of a test or validation speaker is in train.list.
With augmentation dirs (speed perturbation, noise copies, ...), an augmented copy is used for
training when its source utterance (utt2uniq) is in train.list, or when it is listed in
train.list itself; such a copy must not come from a test/validation utterance or speaker,
whether that shows through utt2uniq, through the copy's speaker (`sp1.1-03` -> `03`) or through
its id (`sp1.1-03-03a01Fa` -> `03-03a01Fa`). The first problem found raises SerError naming the
fold, the file and the utterance.
"""
import os

from ser.data.fold_dir import (INFO, LISTS, info_speakers, list_path, read_fold_dirs, read_info,
                               read_utt_list)
from ser.data.kvfile import read_kv
from ser.errors import SerError


def _strip_left(name, known):
    while name not in known:
        if "-" not in name:
            return None
        name = name.split("-", 1)[1]
    return name


def strip_to_known(name, known):
    """The name of `known` that `name` is a copy of (None if none): '<prefix>-' parts dropped from
    the left (sp1.1-03-03a01Fa -> 03-03a01Fa), else one inner part dropped first, as when the
    cross-corpus recipe's corpus prefix stands before the perturbation's (emodb-sp0.9-03 -> emodb-03)."""
    found = _strip_left(name, known)
    parts = name.split("-")
    for i in range(1, len(parts) - 1):
        if found is not None:
            break
        found = _strip_left("-".join(parts[:i] + parts[i + 1:]), known)
    return found


def held_out_speakers(fold_dir, utt2spk, valid, test, keys=("test_speakers", "valid_speakers")):
    """The speakers of the `valid` and `test` utterances and those info.yaml names under `keys`."""
    spk = {utt2spk[u] for u in valid + test if u in utt2spk}
    info = read_info(fold_dir)
    for key in keys:
        spk.update(info_speakers(info, key))
    return spk


def check_fold_lists(feats_dir, fold_dir, lists):
    """Check the fold's {"train", "valid", "test"} utterance `lists`: training utterances exist,
    are in neither valid.list nor test.list, and each has a speaker in <feats_dir>/utt2spk that is
    not a valid/test speaker of the fold (nor in info.yaml). Returns (utt2spk, held-out speakers)."""
    train = lists["train"]
    if not train:
        raise SerError(f"{list_path(fold_dir, 'train')}: no training utterances")
    for name in ("valid", "test"):
        both = sorted(set(train) & set(lists[name]))
        if both:
            raise SerError(f"{fold_dir}: utterance '{both[0]}' is in both train.list and {name}.list")
    utt2spk_path = os.path.join(feats_dir, "utt2spk")
    utt2spk = read_kv(utt2spk_path)
    held_out = held_out_speakers(fold_dir, utt2spk, lists["valid"], lists["test"])
    for utt in train:
        if utt not in utt2spk:
            raise SerError(f"{utt2spk_path}: no speaker for training utterance '{utt}'")
        if utt2spk[utt] in held_out:
            raise SerError(f"{fold_dir}: training utterance '{utt}' is from speaker '{utt2spk[utt]}', "
                           f"a valid/test speaker of this fold")
    return utt2spk, held_out


def _read_unique_list(path, fold):
    try:
        return set(read_utt_list(path))
    except SerError as e:
        raise SerError(f"fold {fold}: {e}") from None


def _read_info(fold_dir, fold):
    info = read_info(fold_dir, required=True)
    for key in ("test_speakers", "valid_speakers"):
        if not isinstance(info.get(key), list):
            raise SerError(f"fold {fold}: {os.path.join(fold_dir, INFO)}: no '{key}' list")
    return {k: info_speakers(info, k) for k in ("test_speakers", "valid_speakers", "train_speakers")}


class _AugDir:
    """utt2spk and utt2uniq of one augmentation data dir."""

    def __init__(self, path):
        self.path = path
        self.utt2spk = read_kv(os.path.join(path, "utt2spk"))
        uniq = os.path.join(path, "utt2uniq")
        self.utt2uniq = read_kv(uniq) if os.path.exists(uniq) else {}
        self.uniq_path = uniq


def check_folds(folds_dir, data_dir=None, aug_dirs=()):
    """Check every fold of `folds_dir`; returns the number of folds. Raises SerError on a leak."""
    ks = read_fold_dirs(folds_dir)
    folds = []
    for k in ks:
        d = os.path.join(folds_dir, str(k))
        paths = {n: list_path(d, n) for n in LISTS}
        lists = {n: _read_unique_list(p, k) for n, p in paths.items()}
        info = _read_info(d, k)
        folds.append((k, paths, lists, info))

    if data_dir is not None:
        utt2spk = read_kv(os.path.join(data_dir, "utt2spk"))
        speakers = set(utt2spk.values())
    else:
        # No data dir: speakers come from info.yaml, and utterance ids start with their speaker id
        # and a delimiter ('1-a' is speaker 1's, '11-a' speaker 11's, not speaker 1's).
        speakers = {s for _, _, _, info in folds for v in info.values() for s in v}
        utt2spk = {}
        for _, _, lists, _ in folds:
            for utts in lists.values():
                for u in utts:
                    owners = [s for s in speakers
                              if u == s or (u.startswith(s) and not u[len(s)].isalnum())]
                    if owners:
                        utt2spk[u] = max(owners, key=len)
    augs = [_AugDir(p) for p in aug_dirs]
    aug_utts = {u: a for a in augs for u in a.utt2spk}

    for k, paths, lists, info in folds:
        train, valid, test = lists["train"], lists["valid"], lists["test"]
        test_spks, valid_spks = set(info["test_speakers"]), set(info["valid_speakers"])
        held_out = test_spks | valid_spks
        for a_name, b_name in (("test", "train"), ("valid", "train"), ("test", "valid")):
            both = sorted(lists[a_name] & lists[b_name])
            if both:
                raise SerError(f"fold {k}: {paths[b_name]}: utterance '{both[0]}' is also in {a_name}.list")
        if not test:
            raise SerError(f"fold {k}: {paths['test']}: no utterances")
        if test_spks & valid_spks:
            raise SerError(f"fold {k}: {os.path.join(folds_dir, str(k), INFO)}: "
                           f"speaker '{sorted(test_spks & valid_spks)[0]}' is both test and validation speaker")
        for name, allowed, what in (("test", test_spks, "test"), ("valid", valid_spks, "validation")):
            for u in sorted(lists[name]):
                spk = utt2spk.get(u)
                if spk is None:
                    raise SerError(f"fold {k}: {paths[name]}: utterance '{u}' is not in the data"
                                   + (f" ({data_dir}/utt2spk)" if data_dir else ""))
                if spk not in allowed:
                    raise SerError(f"fold {k}: {paths[name]}: utterance '{u}' is of speaker '{spk}', "
                                   f"not the fold's {what} speaker ({' '.join(sorted(allowed)) or 'none'})")
        for u in sorted(train):
            spk = utt2spk.get(u)
            if spk is None and u in aug_utts:
                continue  # an augmented copy listed directly: checked with the aug dirs below
            if spk is None:
                if data_dir is not None:
                    raise SerError(f"fold {k}: {paths['train']}: utterance '{u}' is not in {data_dir}/utt2spk")
                continue
            if spk in held_out:
                role = "test" if spk in test_spks else "validation"
                raise SerError(f"fold {k}: {paths['train']}: utterance '{u}' belongs to {role} speaker '{spk}'")
        if data_dir is not None:
            for u in utt2spk:
                if u not in train and u not in valid and u not in test:
                    raise SerError(f"fold {k}: {folds_dir}/{k}: utterance '{u}' of {data_dir}/utt2spk is in no list")

        held_out_utts = valid | test
        for aug in augs:
            for a, a_spk in aug.utt2spk.items():
                source = aug.utt2uniq.get(a) or strip_to_known(a, utt2spk)
                if not (a in train or (source is not None and source in train)):
                    continue
                origin_utts = {x for x in (source, strip_to_known(a, utt2spk)) if x is not None}
                origin_spks = {utt2spk[x] for x in origin_utts if x in utt2spk}
                mapped = strip_to_known(a_spk, speakers)
                if mapped is not None:
                    origin_spks.add(mapped)
                bad_utt = sorted(origin_utts & held_out_utts)
                bad_spk = sorted(origin_spks & held_out)
                if bad_utt or bad_spk:
                    why = (f"of held-out utterance '{bad_utt[0]}'" if bad_utt else
                           f"of {'test' if bad_spk[0] in test_spks else 'validation'} speaker '{bad_spk[0]}'")
                    via = (f"it is listed in {paths['train']}" if a in train else
                           f"{aug.uniq_path if a in aug.utt2uniq else aug.path} maps it to '{source}' "
                           f"in {paths['train']}")
                    raise SerError(f"fold {k}: augmented utterance '{a}' {why} is used for training: {via}")
    return len(folds)
