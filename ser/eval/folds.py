"""Speaker-independent folds (leave-one-speaker-out) with a held-out validation speaker.

Fold k tests on the k-th speaker (LC_ALL=C order), validates on one other speaker and trains on
all the rest, as in paper 1 (section 5). The validation speaker is chosen by:

- `pair`: speakers are grouped in pairs and each speaker's partner validates its fold, so every
  speaker is the validation speaker exactly once. Pairs come from `--pairs`/`--pairs-file`;
  by default IEMOCAP/MSP-IMPROV-style ids (`Ses01F`/`Ses01M`, `F01`/`M01`) pair by session,
  any other ids pair consecutively in sorted order.
- `next`: the next speaker in sorted order (cyclic).
- `none`: no validation speaker (empty valid.list).

The `groups` scheme (corpora with many speakers, e.g. RAVDESS's 24 actors in 6 folds of 4, as
EmoBox does) takes its folds from a `groups:` list in conf/folds.yaml: each fold names its test
speakers and its validation speakers, and trains on all the others. Every speaker must be a test
speaker of exactly one fold, and no fold may validate on one of its test speakers.

Every scheme returns its folds as `speaker_fold` dicts, which ser.data.fold_dir.write_folds
writes as a folds directory; the corpus-specific fold makers (egs/*/local) build and report
theirs with the same functions.
"""
import os
import re


from ser.data.kvfile import c_sorted, read_kv
from ser.errors import SerError
from ser.runtime.config import read_yaml

VALID_METHODS = ("pair", "next", "none")


def read_labelled_utts(data_dir):
    """(utt2spk, utt2emo) of a data dir; every utterance of utt2spk must have a label."""
    utt2spk = read_kv(os.path.join(data_dir, "utt2spk"))
    emo_path = os.path.join(data_dir, "utt2emo")
    utt2emo = read_kv(emo_path)
    for utt in utt2spk:
        if utt not in utt2emo:
            raise SerError(f"{emo_path}: no label for utterance '{utt}' (listed in utt2spk)")
    for utt in utt2emo:
        if utt not in utt2spk:
            raise SerError(f"{emo_path}: utterance '{utt}' is not in utt2spk")
    return utt2spk, utt2emo


def parse_pairs(text, source="--pairs"):
    """'03:08,09:10' (or a list of 'a:b' strings / 2-lists) -> [('03', '08'), ('09', '10')]."""
    items = text if isinstance(text, (list, tuple)) else [p for p in re.split(r"[,\s]+", text.strip()) if p]
    pairs = []
    for item in items:
        if not isinstance(item, (str, list, tuple)):   # YAML 1.1 reads an unquoted 11:13 as 673
            raise SerError(f"{source}: bad speaker pair {item!r}: quote each pair, e.g. '11:13'")
        parts = item.split(":") if isinstance(item, str) else list(item)
        if len(parts) != 2 or not all(str(p).strip() for p in parts):
            raise SerError(f"{source}: bad speaker pair {item!r} (expected 'spkA:spkB')")
        pairs.append((str(parts[0]).strip(), str(parts[1]).strip()))
    return pairs


def read_pairs_file(path):
    """Speaker pairs from a YAML file with a `pairs:` list of 'spkA:spkB' strings."""
    conf = read_yaml(path) or {}
    if not isinstance(conf, dict) or "pairs" not in conf:
        raise SerError(f"{path}: no 'pairs' list")
    return parse_pairs(conf["pairs"], source=path)


def _session_pairs(speakers):
    """Pairs by session for ids holding exactly one gender letter F/M (Ses01F, M01); else None."""
    groups = {}
    for spk in speakers:
        hits = [m.start() for m in re.finditer("[FM]", spk)]
        if len(hits) != 1:
            return None
        i = hits[0]
        groups.setdefault(spk[:i] + "*" + spk[i + 1:], []).append(spk)
    if any(len(g) != 2 for g in groups.values()):
        return None
    return [tuple(c_sorted(g)) for _, g in sorted(groups.items())]


def default_pairs(speakers):
    """Session partners for IEMOCAP/MSP-IMPROV-style ids, else consecutive sorted speakers."""
    speakers = c_sorted(speakers)
    pairs = _session_pairs(speakers)
    if pairs is not None:
        return pairs
    if len(speakers) % 2:
        raise SerError(f"cannot pair an odd number of speakers ({len(speakers)}); "
                       "give --pairs/--pairs-file or use --valid next")
    return [(speakers[i], speakers[i + 1]) for i in range(0, len(speakers), 2)]


def partner_map(pairs, speakers, source="pairs"):
    """speaker -> partner; every speaker of the data must be in exactly one pair."""
    partner = {}
    for a, b in pairs:
        if a == b:
            raise SerError(f"{source}: speaker '{a}' is paired with itself")
        for s in (a, b):
            if s in partner:
                raise SerError(f"{source}: speaker '{s}' is in more than one pair")
            if s not in speakers:
                raise SerError(f"{source}: speaker '{s}' is not in the data")
        partner[a], partner[b] = b, a
    missing = [s for s in speakers if s not in partner]
    if missing:
        raise SerError(f"{source}: speaker(s) {' '.join(missing)} are in no pair")
    return partner


def read_groups_file(path):
    """[(test speakers, valid speakers)] from a YAML file with a `groups:` list of
    {test: "01 02 03 04", valid: "05 06"} mappings (speaker ids as strings, space separated)."""
    conf = read_yaml(path) or {}
    groups = conf.get("groups") if isinstance(conf, dict) else None
    if not isinstance(groups, list) or not groups:
        raise SerError(f"{path}: no 'groups' list")
    out = []
    for k, g in enumerate(groups, 1):
        if not isinstance(g, dict) or set(g) - {"test", "valid"} or "test" not in g:
            raise SerError(f"{path}: group {k} must be a mapping with 'test' and optional 'valid' speakers")
        test, valid = (str(g.get(key) or "").split() for key in ("test", "valid"))
        if not test:
            raise SerError(f"{path}: group {k} has no test speakers")
        out.append((test, valid))
    return out


def folds_scheme(path):
    """'groups' if the folds config `path` has a `groups:` list, else 'loso' (its `pairs:`)."""
    conf = read_yaml(path) or {}
    return "groups" if isinstance(conf, dict) and "groups" in conf else "loso"


def speaker_utts(utt2spk):
    """speaker -> its utterances in C order."""
    spk2utts = {}
    for utt in c_sorted(utt2spk):
        spk2utts.setdefault(utt2spk[utt], []).append(utt)
    return spk2utts


def speaker_fold(k, test_spks, valid_spks, train_spks, spk2utts):
    """Fold `k` as a dict (the format of ser.data.fold_dir.fold_files): the test, validation
    and training speakers as given, and the C-sorted utterances of each part."""
    fold = {"fold": k, "test_speakers": list(test_spks), "valid_speakers": list(valid_spks),
            "train_speakers": list(train_spks)}
    for name, spks in (("test", test_spks), ("valid", valid_spks), ("train", train_spks)):
        fold[name] = c_sorted(u for s in spks for u in spk2utts[s])
    return fold


def make_group_folds(utt2spk, groups, source="groups"):
    """Folds of given test/validation speaker groups (see the module docstring); same dicts as
    make_loso_folds, fold k from the k-th group."""
    speakers = c_sorted(set(utt2spk.values()))
    tested = [s for test, _ in groups for s in test]
    for s in set(tested) | {s for _, valid in groups for s in valid}:
        if s not in speakers:
            raise SerError(f"{source}: speaker '{s}' is not in the data")
    twice = c_sorted({s for s in tested if tested.count(s) > 1})
    if twice:
        raise SerError(f"{source}: speaker(s) {', '.join(twice)} are tested in more than one fold")
    untested = [s for s in speakers if s not in tested]
    if untested:
        raise SerError(f"{source}: speaker(s) {', '.join(untested)} are never tested")
    spk2utts = speaker_utts(utt2spk)
    folds = []
    for k, (test, valid) in enumerate(groups, 1):
        if set(test) & set(valid):
            raise SerError(f"{source}: group {k} validates on its test speaker(s) "
                           f"{', '.join(c_sorted(set(test) & set(valid)))}")
        train = [s for s in speakers if s not in test and s not in valid]
        folds.append(speaker_fold(k, c_sorted(test), c_sorted(valid), train, spk2utts))
    return folds


def make_loso_folds(utt2spk, valid="pair", pairs=None, pairs_source="pairs"):
    """Leave-one-speaker-out folds: a list of dicts with test/valid/train speakers and utterances.

    Fold k (1-based) tests on the k-th speaker in C order. Utterance lists are C-sorted.
    """
    if valid not in VALID_METHODS:
        raise SerError(f"--valid must be one of {', '.join(VALID_METHODS)}, not '{valid}'")
    speakers = c_sorted(set(utt2spk.values()))
    if len(speakers) < (3 if valid != "none" else 2):
        raise SerError(f"leave-one-speaker-out needs more speakers than {len(speakers)}")
    if valid == "pair":
        partner = partner_map(pairs if pairs is not None else default_pairs(speakers), speakers, pairs_source)
    spk2utts = speaker_utts(utt2spk)
    folds = []
    for k, test_spk in enumerate(speakers):
        if valid == "pair":
            valid_spks = [partner[test_spk]]
        elif valid == "next":
            valid_spks = [speakers[(k + 1) % len(speakers)]]
        else:
            valid_spks = []
        train_spks = [s for s in speakers if s != test_spk and s not in valid_spks]
        folds.append(speaker_fold(k + 1, [test_spk], valid_spks, train_spks, spk2utts))
    return folds


def fold_line(fold):
    """A fold's summary line: its test and validation speakers and list sizes."""
    return (f"  fold {fold['fold']}: test {','.join(fold['test_speakers'])} "
            f"valid {','.join(fold['valid_speakers']) or '-'}  "
            f"#train {len(fold['train'])} #valid {len(fold['valid'])} #test {len(fold['test'])}")


def fold_summary(prog, changed, folds, what, num_classes, out_dir, line=fold_line):
    """What a fold maker prints after writing `out_dir`: '<prog>: wrote N <what>, C classes in
    DIR' ('unchanged:' for a folds dir that was already there), then `line(fold)` per fold."""
    head = (f"{prog}: {'wrote' if changed else 'unchanged:'} {len(folds)} {what}, {num_classes} classes "
            f"in {os.path.normpath(out_dir)}")
    return "\n".join([head] + [line(f) for f in folds])
