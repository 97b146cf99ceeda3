#!/usr/bin/env python3
"""Speaker-independent k-fold cross-validation by actor for CREMA-D (instead of run.sh's stage 2).

    local/make_actor_folds.py [--conf conf/folds.yaml] [--num-folds K] [--num-valid-actors N] [--seed S]
        DATA_DIR OUT_DIR

CREMA-D has 91 actors: leave-one-speaker-out would be 91 folds, and an odd number of speakers
cannot be paired as run.sh's stage 2 (make_folds --valid pair) needs. Instead the actors are
split into K test groups; fold k tests on group k, validates on N actors drawn from the other
groups and trains on the remaining actors, so every actor is tested exactly once and no actor
is in two parts of a fold. With DATA_DIR/spk2gender the split is gender-balanced: the actors of
each gender are shuffled and dealt to the groups in turn (group sizes differ by at most one,
and so do a group's male and female counts), and the N validation actors are half male, half
female (the extra one, if N is odd, of the gender with more candidates). Without spk2gender
(no VideoDemographics.csv) all actors are dealt as one group.
The shuffles use Python's random.Random seeded with S (test groups) and S * 1000 + k (the
validation actors of fold k): the same data, K, N and S always give the same folds.
Defaults from the `actor_folds:` section of --conf (num_folds, num_valid_actors, seed); the
options win.

Writes the layout of ser.bin.make_folds: OUT_DIR/1..K/{train,valid,test}.list, info.yaml,
OUT_DIR/classes.txt and OUT_DIR/folds.tsv, built as OUT_DIR.tmp and renamed (an unchanged
OUT_DIR is left untouched). run.sh's stage 2 calls it through local/make_folds.sh.
"""
import argparse
import os
import random

import yaml

from ser.data.fold_dir import write_folds
from ser.data.kvfile import c_sorted, read_kv
from ser.errors import SerError, run_main
from ser.eval.folds import fold_summary, read_labelled_utts, speaker_fold, speaker_utts

DEFAULTS = {"num_folds": 5, "num_valid_actors": 8, "seed": 1}


def read_conf(path):
    """The actor_folds section of a YAML file, over DEFAULTS (unknown keys are an error)."""
    conf = dict(DEFAULTS)
    if path is None:
        return conf
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    section = data.get("actor_folds") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise SerError(f"{path}: no 'actor_folds:' section (num_folds, num_valid_actors, seed)")
    for key, value in section.items():
        if key not in DEFAULTS:
            raise SerError(f"{path}: actor_folds: unknown key '{key}' (expected {', '.join(DEFAULTS)})")
        if not isinstance(value, int) or isinstance(value, bool):
            raise SerError(f"{path}: actor_folds: {key} must be an integer, got {value!r}")
        conf[key] = value
    return conf


def by_gender(actors, spk2gender):
    """gender -> C-sorted actors; one group '' when genders are unknown."""
    if not spk2gender:
        return {"": c_sorted(actors)}
    groups = {}
    for a in c_sorted(actors):
        groups.setdefault(spk2gender[a], []).append(a)
    return groups


def draw_valid(candidates, spk2gender, n, rng):
    """n actors of `candidates`, split between the genders as evenly as they allow."""
    groups = {g: list(a) for g, a in by_gender(candidates, spk2gender).items()}
    for g in sorted(groups):
        rng.shuffle(groups[g])
    picked, take = [], {g: 0 for g in groups}
    for _ in range(n):  # one at a time to the gender with fewest picked, then most left
        g = min((g for g in sorted(groups) if take[g] < len(groups[g])),
                key=lambda g: (take[g], -(len(groups[g]) - take[g])))
        picked.append(groups[g][take[g]])
        take[g] += 1
    return c_sorted(picked)


def make_actor_folds(utt2spk, spk2gender=None, num_folds=5, num_valid=8, seed=1):
    """Fold dicts (ser.eval.folds.speaker_fold) of the scheme in the docstring."""
    spk2utts = speaker_utts(utt2spk)
    actors = c_sorted(spk2utts)
    if num_folds < 2 or num_folds > len(actors):
        raise SerError(f"--num-folds must be 2..{len(actors)} (the number of actors), got {num_folds}")
    if num_valid < 0:
        raise SerError(f"--num-valid-actors must be >= 0, got {num_valid}")
    largest = -(-len(actors) // num_folds)
    if num_valid > len(actors) - largest - 1:
        raise SerError(f"--num-valid-actors {num_valid} leaves no training actor: at most "
                       f"{len(actors) - largest - 1} with {len(actors)} actors in {num_folds} folds")
    rng = random.Random(seed)
    order = []
    for g, group in sorted(by_gender(actors, spk2gender).items()):
        group = list(group)
        rng.shuffle(group)
        order += group
    # Dealing continues across genders, so the groups stay within one actor of each other.
    groups = [c_sorted(order[k::num_folds]) for k in range(num_folds)]
    folds = []
    for k, test_spks in enumerate(groups):
        candidates = [a for a in actors if a not in test_spks]
        valid_spks = draw_valid(candidates, spk2gender, num_valid, random.Random(seed * 1000 + k + 1))
        train_spks = [a for a in candidates if a not in valid_spks]
        folds.append(speaker_fold(k + 1, test_spks, valid_spks, train_spks, spk2utts))
    return folds


def actor_line(fold):
    """A fold's summary line: its numbers of test, validation and training actors and list sizes."""
    return (f"  fold {fold['fold']}: {len(fold['test_speakers'])} test / {len(fold['valid_speakers'])} valid / "
            f"{len(fold['train_speakers'])} train actors  "
            f"#train {len(fold['train'])} #valid {len(fold['valid'])} #test {len(fold['test'])}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="make_actor_folds.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", default=None,
                   help="YAML file with an actor_folds: section (default: conf/folds.yaml if it exists)")
    p.add_argument("--num-folds", type=int, help=f"number of test groups K (default {DEFAULTS['num_folds']})")
    p.add_argument("--num-valid-actors", type=int,
                   help=f"validation actors per fold (default {DEFAULTS['num_valid_actors']})")
    p.add_argument("--seed", type=int, help=f"seed of the shuffles (default {DEFAULTS['seed']})")
    p.add_argument("data_dir", help="data dir with utt2spk, utt2emo and (for balancing) spk2gender")
    p.add_argument("out_dir", help="output folds directory")
    args = p.parse_args(argv)
    conf_path = args.conf if args.conf is not None else (
        "conf/folds.yaml" if os.path.isfile("conf/folds.yaml") else None)
    conf = read_conf(conf_path)
    for key in DEFAULTS:
        if getattr(args, key) is not None:
            conf[key] = getattr(args, key)

    utt2spk, utt2emo = read_labelled_utts(args.data_dir)
    speakers = set(utt2spk.values())
    gender_path = os.path.join(args.data_dir, "spk2gender")
    spk2gender = read_kv(gender_path) if os.path.isfile(gender_path) else {}
    missing = c_sorted(speakers - set(spk2gender))
    if spk2gender and missing:
        raise SerError(f"{gender_path}: no entry for speaker '{missing[0]}'")
    folds = make_actor_folds(utt2spk, spk2gender, conf["num_folds"], conf["num_valid_actors"], conf["seed"])
    classes = c_sorted(set(utt2emo.values()))
    drawn = {"num_folds": conf["num_folds"], "num_valid_actors": conf["num_valid_actors"],
             "seed": conf["seed"], "gender_balanced": bool(spk2gender)}  # info.yaml: how the folds were drawn
    changed = write_folds(args.out_dir, folds, classes, scheme="actor_kfold", valid="random_actors", info=drawn)
    what = (f"actor folds (seed {conf['seed']}, {conf['num_valid_actors']} validation actors, "
            f"{'gender-balanced' if spk2gender else 'no spk2gender: not gender-balanced'})")
    print(fold_summary("make_actor_folds.py", changed, folds, what, len(classes), args.out_dir, line=actor_line))
    return 0


if __name__ == "__main__":
    run_main(main)
