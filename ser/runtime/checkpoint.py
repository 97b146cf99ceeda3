"""Training checkpoints (`<outdir>/checkpoints/last.pt`), the random states in them, and resuming
a run from one.

A checkpoint holds everything that determines the rest of a run: the trainer's state (networks,
optimizer, schedule, position, history) and, under "rng", the states of every random generator
used (python, numpy, torch CPU, CUDA, and the run's shared torch.Generator). Resuming from it
continues bit-identically to a run that was never interrupted.

Under torch.distributed a checkpoint also holds "rng_ranks" (every rank's random states; "rng" is
rank 0's); a run resumed with the same number of processes restores each rank's own streams and
continues bit-identically. With another number of processes the shared generator (data order,
mixup, ...) continues on every rank, rank 0 continues its own streams and the other ranks'
streams (dropout) are re-seeded from the run's position (epoch or step).
"""
import logging
import os
import random
import sys

import numpy as np
import torch

from ser.runtime import distributed as D
from ser.runtime.torch_files import load_torch_file, save_torch_file

CHECKPOINT = os.path.join("checkpoints", "last.pt")
# Tests: exit with this status after a checkpoint, as a killed job would.
KILL_STATUS = 75


def seed_everything(seed):
    """Seed python, numpy, torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def seed_rank_streams(seed):
    """Under torch.distributed, seed the global generators of every rank but 0 for its own
    streams (dropout); rank 0 keeps the single-process streams."""
    if D.rank() > 0:
        seed_everything(D.rank_seed(seed, D.rank()))


def rng_states(generator):
    """Current states of all random generators (CUDA only if initialised)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "generator": generator.get_state(),
    }


def set_rng_states(states, generator):
    """Restore the states saved by `rng_states`."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    generator.set_state(states["generator"])


def save_checkpoint(path, state):
    """Write the `state` dict to `path` atomically."""
    save_torch_file(path, state)


def load_checkpoint(path):
    """Read a checkpoint written by `save_checkpoint` (tensors loaded on CPU).

    weights_only=False because the RNG states are python/numpy objects; the file is our own
    output in the experiment directory.
    """
    return load_torch_file(path, "{path}: cannot read checkpoint ({error}); delete it to restart",
                           weights_only=False)


def kill_hook(env, status=KILL_STATUS):
    """A hook(position) that exits with `status` when position == int($env); None when $env is unset
    (tests simulate a killed job through the command line)."""
    value = os.environ.get(env)
    if not value:
        return None

    def hook(position):
        if position != int(value):
            return
        if D.is_distributed():
            # A killed rank runs no teardown. Leaving the interpreter normally with the process
            # group alive can abort in gloo's threads (SIGABRT instead of `status`).
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        raise SystemExit(status)
    return hook


def restore_rng(state, generator, world, rank_, position):
    """Restore this rank's random states and the shared `generator` from checkpoint `state`.

    Returns None when every stream was restored, else the number of processes that wrote the
    checkpoint (it differs from `world`; the other ranks' own streams are re-seeded from `position`)."""
    ranks = state.get("rng_ranks") or [state["rng"]]
    if len(ranks) == world:
        set_rng_states(ranks[rank_], generator)
        return None
    if rank_ == 0:
        set_rng_states(state["rng"], generator)
    else:
        generator.set_state(state["rng"]["generator"])
        seed_everything(D.rank_seed(position, rank_))
    return len(ranks)


def resume_if_checkpoint(ckpt, load_state_dict, log, where):
    """Load checkpoint `ckpt` with `load_state_dict` (it returns a note or None) if rank 0 finds it.

    Logs "resumed from <ckpt> <where()>" and the note; every rank calls it (a collective under
    torch.distributed). Returns whether the run was resumed."""
    if not D.broadcast_object(os.path.exists(ckpt) if D.rank() == 0 else None):  # rank 0 decides
        return False
    note = load_state_dict(load_checkpoint(ckpt))
    log.info(f"resumed from {ckpt} {where()}")
    if note:
        log.info(note)
    return True
