"""Refitting a finished run on its fold's training and validation speakers together.

A leave-one-speaker-out fold validates on one speaker: the epoch it selects is noisy, and that
speaker's utterances never reach the model's training. A refit run (`ser.bin.train --refit-from
SRC`) trains the same model again, from the same seed, on train.list + valid.list, for exactly the
epochs the source run's validation selected (its best epoch, the first of equal maxima as the
trainer keeps it) and with the learning rate the source used in each of them (its history.tsv),
so that the plateau halvings happen at the same epochs. Nothing of the test speaker is read; the
choice of the number of epochs and of the schedule stays the validation speaker's. model.pt is
the weights after the last of those epochs.

The source must be a finished run (`done`) of the same experiment on the same fold and seed: its
config.yaml must resolve to this run's config without the refit keys (`data.train_on`,
`data.refit_from`).
"""
import os
from dataclasses import dataclass

from ser.errors import SerError
from ser.eval.fit import best_validated_epoch
from ser.eval.train_time import read_history
from ser.runtime.config import read_yaml
from ser.runtime.run_dir import DONE

TRAIN_ON = "train+valid"      # data.train_on of a refit run (hashed: a refit is its own experiment)


@dataclass
class RefitPlan:
    """What a refit run replays from its source run."""
    source: str                  # the source run dir
    epochs: int                  # the source's selected (best) epoch
    lrs: list                    # learning rate of each of those epochs
    valid_uar: float             # the source's validation UAR at that epoch


def refit_plan(source):
    """The RefitPlan of finished run dir `source`; SerError when it is unfinished or never validated."""
    if not os.path.exists(os.path.join(source, DONE)):
        raise SerError(f"refit source {source}: training not finished (no {DONE})")
    rows = read_history(source)
    best = best_validated_epoch(rows)
    if best is None:
        raise SerError(f"refit source {source}: {os.path.join(source, 'history.tsv')} has no validated epoch")
    epochs = int(best["epoch"])
    lrs = [r["lr"] for r in rows[:epochs]]
    if [int(r["epoch"]) for r in rows[:epochs]] != list(range(1, epochs + 1)):
        raise SerError(f"refit source {source}: history.tsv does not list epochs 1..{epochs} in order")
    return RefitPlan(source=source, epochs=epochs, lrs=lrs, valid_uar=best["valid_uar"])


def source_config(resolved):
    """The config the source run of refit config `resolved` must have: without the refit keys."""
    data = {k: v for k, v in resolved["data"].items() if k not in ("train_on", "refit_from")}
    return dict(resolved, data=data)


def check_source(source, resolved, config_hash):
    """SerError unless run dir `source` holds the same experiment, fold and seed as refit config `resolved`."""
    path = os.path.join(source, "config.yaml")
    if not os.path.exists(path):
        raise SerError(f"refit source {source}: no config.yaml")
    src = read_yaml(path)
    expected = source_config(resolved)
    if config_hash(src) != config_hash(expected):
        raise SerError(f"refit source {source}: its config (hash {config_hash(src)}) is not this run's "
                       f"without the refit ({config_hash(expected)}): refit a run of the same config")
    # fold and seed are left out of the hash (ser.training.config.JOB_KEYS)
    src_fold = (src.get("data") or {}).get("fold_dir")
    if src_fold != expected["data"].get("fold_dir"):
        raise SerError(f"refit source {source}: trained on fold {src_fold}, not {expected['data'].get('fold_dir')}")
    if src.get("seed") != expected.get("seed"):
        raise SerError(f"refit source {source}: seed {src.get('seed')}, not {expected.get('seed')}")
