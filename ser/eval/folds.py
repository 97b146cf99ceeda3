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
"""
import os
import re
import shutil

import yaml

from ser.data.atomic import atomic_write_text
from ser.data.kvfile import c_sorted, read_kv
from ser.errors import SerError

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
        parts = item.split(":") if isinstance(item, str) else list(item)
        if len(parts) != 2 or not all(str(p).strip() for p in parts):
            raise SerError(f"{source}: bad speaker pair {item!r} (expected 'spkA:spkB')")
        pairs.append((str(parts[0]).strip(), str(parts[1]).strip()))
    return pairs


def read_pairs_file(path):
    """Speaker pairs from a YAML file with a `pairs:` list of 'spkA:spkB' strings."""
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
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
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
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
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    return "groups" if isinstance(conf, dict) and "groups" in conf else "loso"


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
    spk2utts = {s: [] for s in speakers}
    for utt in c_sorted(utt2spk):
        spk2utts[utt2spk[utt]].append(utt)
    folds = []
    for k, (test, valid) in enumerate(groups, 1):
        if set(test) & set(valid):
            raise SerError(f"{source}: group {k} validates on its test speaker(s) "
                           f"{', '.join(c_sorted(set(test) & set(valid)))}")
        train = [s for s in speakers if s not in test and s not in valid]
        folds.append({"fold": k, "test_speakers": c_sorted(test), "valid_speakers": c_sorted(valid),
                      "train_speakers": train,
                      "test": c_sorted(u for s in test for u in spk2utts[s]),
                      "valid": c_sorted(u for s in valid for u in spk2utts[s]),
                      "train": c_sorted(u for s in train for u in spk2utts[s])})
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
    spk2utts = {s: [] for s in speakers}
    for utt in c_sorted(utt2spk):
        spk2utts[utt2spk[utt]].append(utt)
    folds = []
    for k, test_spk in enumerate(speakers):
        if valid == "pair":
            valid_spks = [partner[test_spk]]
        elif valid == "next":
            valid_spks = [speakers[(k + 1) % len(speakers)]]
        else:
            valid_spks = []
        train_spks = [s for s in speakers if s != test_spk and s not in valid_spks]
        folds.append({
            "fold": k + 1,
            "test_speakers": [test_spk],
            "valid_speakers": valid_spks,
            "train_speakers": train_spks,
            "test": list(spk2utts[test_spk]),
            "valid": c_sorted(u for s in valid_spks for u in spk2utts[s]),
            "train": c_sorted(u for s in train_spks for u in spk2utts[s]),
        })
    return folds


class _QuotingDumper(yaml.SafeDumper):
    """Quotes number-like strings (speaker '09'), which YAML 1.2 readers would take as numbers."""


_QuotingDumper.add_representer(
    str, lambda dumper, s: dumper.represent_scalar(
        "tag:yaml.org,2002:str", s, style='"' if re.fullmatch(r"[0-9.+\-eE_:]+", s) else None))


def _lines(items):
    return "".join(f"{x}\n" for x in items)


def fold_files(folds, classes, scheme="loso", valid="pair"):
    """Relative path -> text of every file of a folds directory."""
    files = {"classes.txt": _lines(classes)}
    rows = ["fold\ttest_speakers\tvalid_speakers\tnum_train\tnum_valid\tnum_test"]
    for f in folds:
        k = str(f["fold"])
        files[f"{k}/train.list"] = _lines(f["train"])
        files[f"{k}/valid.list"] = _lines(f["valid"])
        files[f"{k}/test.list"] = _lines(f["test"])
        info = {
            "fold": f["fold"], "scheme": scheme, "valid_method": valid,
            "test_speakers": f["test_speakers"], "valid_speakers": f["valid_speakers"],
            "train_speakers": f["train_speakers"],
            "num_train": len(f["train"]), "num_valid": len(f["valid"]), "num_test": len(f["test"]),
        }
        files[f"{k}/info.yaml"] = yaml.dump(info, Dumper=_QuotingDumper, sort_keys=False, default_flow_style=None)
        rows.append("\t".join([k, ",".join(f["test_speakers"]), ",".join(f["valid_speakers"]) or "-",
                               str(len(f["train"])), str(len(f["valid"])), str(len(f["test"]))]))
    files["folds.tsv"] = _lines(rows)
    return files


def _same_tree(out_dir, files):
    """True if out_dir holds exactly these files with this content."""
    if not os.path.isdir(out_dir):
        return False
    found = set()
    for root, _, names in os.walk(out_dir):
        for n in names:
            found.add(os.path.relpath(os.path.join(root, n), out_dir))
    if found != set(files):
        return False
    for rel, text in files.items():
        with open(os.path.join(out_dir, rel), encoding="utf-8") as fh:
            if fh.read() != text:
                return False
    return True


def write_tree(out_dir, files):
    """Write the files under out_dir as a whole: build out_dir.tmp, then swap it in.

    Returns False (and touches nothing) when out_dir already holds identical files, so a re-run
    with the same inputs leaves the folds and their time stamps unchanged.
    """
    out_dir = os.path.normpath(out_dir)
    if _same_tree(out_dir, files):
        return False
    tmp, old = out_dir + ".tmp", out_dir + ".old"
    for d in (tmp, old):
        if os.path.exists(d):
            shutil.rmtree(d)
    for rel, text in files.items():
        atomic_write_text(os.path.join(tmp, rel), text)
    if os.path.exists(out_dir):
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if os.path.exists(old):
        shutil.rmtree(old)
    return True


def read_fold_dirs(folds_dir):
    """Sorted fold numbers (numbered sub-directories) of a folds directory."""
    if not os.path.isdir(folds_dir):
        raise SerError(f"no folds directory '{folds_dir}'")
    ks = sorted(int(d) for d in os.listdir(folds_dir)
                if d.isdigit() and os.path.isdir(os.path.join(folds_dir, d)))
    if not ks:
        raise SerError(f"{folds_dir}: no numbered fold directories")
    return ks


def read_utt_list(path):
    """Utterance ids of a list file (first field of each non-empty line)."""
    with open(path, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]
