"""Resuming a training run from its checkpoint, shared by the classifier and diffusion trainers.

Under torch.distributed a checkpoint holds "rng" (rank 0's random states) and "rng_ranks" (every
rank's); a run resumed with the same number of processes restores each rank's own streams and
continues bit-identically. With another number of processes the shared generator (data order,
mixup, ...) continues on every rank, rank 0 continues its own streams and the other ranks'
streams (dropout) are re-seeded from the run's position (epoch or step).
"""
import os

from ser.training import distributed as D
from ser.training.checkpoint import load_checkpoint, seed_everything, set_rng_states

# Tests: exit with this status after a checkpoint, as a killed job would.
KILL_STATUS = 75


def kill_hook(env, status=KILL_STATUS):
    """A hook(position) that exits with `status` when position == int($env); None when $env is unset
    (tests simulate a killed job through the command line)."""
    value = os.environ.get(env)
    if not value:
        return None

    def hook(position):
        if position == int(value):
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
