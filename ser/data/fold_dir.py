"""The fold directory: the files a folds directory holds, how they are read and how they are written.

A folds directory (`data/<dset>_folds/`) holds `classes.txt` (the class labels, one per line:
the output order of every model), `folds.tsv` (one summary row per fold) and one numbered
sub-directory per fold, `<k>/`, holding:

- `train.list`, `valid.list`, `test.list`: utterance ids, one per line (the first field counts,
  blank lines are skipped, an id listed twice is an error);
- `adapt.list` (optional): target-corpus utterances added to training for adaptation, all of
  them in train.list;
- `info.yaml`: fold, scheme, valid_method, test_speakers, valid_speakers, train_speakers and the
  list sizes, plus what a fold maker records about how it drew the fold. Readers that only need
  the held-out speakers treat it as optional.

A folds directory is written as a whole (`write_folds`, `write_tree`): it is built as
`.<out>.tmp` beside it and swapped in (ser.data.atomic.building_dir), and left untouched when it already holds the same files. The checks
of a fold's contents (disjoint lists, held-out speakers, augmentation leaks) are in
ser.data.fold_check.
"""
import os
import re

import yaml

from ser.data.atomic import atomic_write_text, building_dir
from ser.errors import SerError
from ser.runtime.config import read_yaml

LISTS = ("train", "valid", "test")
INFO = "info.yaml"


def list_path(fold_dir, name):
    """The path of the fold's `<name>.list` (train, valid, test, adapt)."""
    return os.path.join(fold_dir, f"{name}.list")


def read_utt_list(path):
    """Utterance ids, one per line (first field); SerError naming file and line on a duplicate."""
    utts, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            utt = line.split()[0]
            if utt in seen:
                raise SerError(f"{path}:{lineno}: duplicate utterance '{utt}'")
            seen.add(utt)
            utts.append(utt)
    return utts


def read_fold_lists(fold_dir):
    """{"train", "valid", "test"} -> utterance ids of the fold; SerError when a list is missing."""
    lists = {}
    for name in LISTS:
        path = list_path(fold_dir, name)
        if not os.path.isfile(path):
            raise SerError(f"{path}: no such file (a fold dir needs train.list, valid.list, test.list)")
        lists[name] = read_utt_list(path)
    return lists


def adaptation_utts(fold_dir, train):
    """The fold's adapt.list (real utterances every training source keeps; [] without the file);
    SerError for one that is not in `train`."""
    path = list_path(fold_dir, "adapt")
    if not os.path.exists(path):
        return []
    adapt, train_set = read_utt_list(path), set(train)
    outside = [u for u in adapt if u not in train_set]
    if outside:
        raise SerError(f"{path}: adaptation utterance '{outside[0]}' is not in train.list")
    return adapt


def read_classes(path):
    """Class labels in order from classes.txt (one per line)."""
    with open(path, encoding="utf-8") as f:
        classes = [line.strip() for line in f if line.strip()]
    if len(classes) < 2:
        raise SerError(f"{path}: needs at least 2 classes, found {len(classes)}")
    dup = sorted({c for c in classes if classes.count(c) > 1})
    if dup:
        raise SerError(f"{path}: duplicate class {dup[0]!r}")
    return classes


def read_info(fold_dir, required=False):
    """The fold's info.yaml as a dict: {} for an empty file, and without the file unless
    `required` (then FileNotFoundError); SerError for invalid YAML or a non-mapping."""
    path = os.path.join(fold_dir, INFO)
    try:
        info = read_yaml(path)
    except (FileNotFoundError, NotADirectoryError):
        if required:
            raise
        return {}
    if info is None:
        return {}
    if not isinstance(info, dict):
        raise SerError(f"{path}: expected a mapping, got {type(info).__name__}")
    return info


def info_speakers(info, key):
    """The speaker ids under `key` of an info.yaml dict as strings (a single id counts as a list)."""
    value = info.get(key) or []
    return [str(s) for s in (value if isinstance(value, list) else [value])]


class _QuotingDumper(yaml.SafeDumper):
    """Quotes number-like strings (speaker '09'), which YAML 1.2 readers would take as numbers."""


_QuotingDumper.add_representer(
    str, lambda dumper, s: dumper.represent_scalar(
        "tag:yaml.org,2002:str", s, style='"' if re.fullmatch(r"[0-9.+\-eE_:]+", s) else None))


def info_text(info):
    """The text of an info.yaml holding the dict `info` (keys in their order)."""
    return yaml.dump(info, Dumper=_QuotingDumper, sort_keys=False, default_flow_style=None)


def fold_numbers(folds_dir):
    """Sorted fold numbers (numbered sub-directories) of a folds directory; [] without one."""
    if not os.path.isdir(folds_dir):
        return []
    return sorted(int(d) for d in os.listdir(folds_dir)
                  if d.isdigit() and os.path.isdir(os.path.join(folds_dir, d)))


def read_fold_dirs(folds_dir):
    """Sorted fold numbers of a folds directory; SerError when it is missing or has no fold."""
    if not os.path.isdir(folds_dir):
        raise SerError(f"no folds directory '{folds_dir}'")
    ks = fold_numbers(folds_dir)
    if not ks:
        raise SerError(f"{folds_dir}: no numbered fold directories")
    return ks


def _lines(items):
    return "".join(f"{x}\n" for x in items)


def fold_files(folds, classes, scheme="loso", valid="pair", info=None):
    """Relative path -> text of every file of a folds directory.

    `folds`: dicts with fold (its number), test_speakers, valid_speakers, train_speakers and the
    utterance lists train, valid, test (and adapt, written to adapt.list); `info`: keys added to
    every fold's info.yaml after the standard ones."""
    files = {"classes.txt": _lines(classes)}
    rows = ["fold\ttest_speakers\tvalid_speakers\tnum_train\tnum_valid\tnum_test"]
    for f in folds:
        k = str(f["fold"])
        for name in LISTS:
            files[f"{k}/{name}.list"] = _lines(f[name])
        if "adapt" in f:
            files[f"{k}/adapt.list"] = _lines(f["adapt"])
        fold_info = {
            "fold": f["fold"], "scheme": scheme, "valid_method": valid,
            "test_speakers": f["test_speakers"], "valid_speakers": f["valid_speakers"],
            "train_speakers": f["train_speakers"],
            "num_train": len(f["train"]), "num_valid": len(f["valid"]), "num_test": len(f["test"]),
        }
        fold_info.update(info or {})
        files[f"{k}/{INFO}"] = info_text(fold_info)
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
    """Write the files under out_dir as a whole: build them beside it, then swap them in.

    Returns False (and touches nothing) when out_dir already holds identical files, so a re-run
    with the same inputs leaves the folds and their time stamps unchanged.
    """
    out_dir = os.path.normpath(out_dir)
    if _same_tree(out_dir, files):
        return False
    with building_dir(out_dir) as tmp:
        for rel, text in files.items():
            atomic_write_text(os.path.join(tmp, rel), text)
    return True


def write_folds(out_dir, folds, classes, scheme="loso", valid="pair", info=None):
    """Write a folds directory (`fold_files` through `write_tree`); False when it was unchanged."""
    return write_tree(out_dir, fold_files(folds, classes, scheme=scheme, valid=valid, info=info))
