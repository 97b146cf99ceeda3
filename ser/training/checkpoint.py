"""Training checkpoints (`<outdir>/checkpoints/last.pt`) and the random-number states in them.

A checkpoint holds everything that determines the rest of a run: model and optimizer state,
plateau state, epoch, best score, history, and the states of every random generator used
(python, numpy, torch CPU, CUDA, and the data-order/mixup torch.Generator). Resuming from it
continues bit-identically to a run that was never interrupted.
"""
import random

import numpy as np
import torch

from ser.data.atomic import atomic_open
from ser.errors import SerError


def seed_everything(seed):
    """Seed python, numpy, torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)  # also seeds every CUDA device


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
    with atomic_open(path, "wb") as f:
        torch.save(state, f)


def load_checkpoint(path):
    """Read a checkpoint written by `save_checkpoint` (tensors loaded on CPU).

    weights_only=False because the RNG states are python/numpy objects; the file is our own
    output in the experiment directory.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise SerError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e}); delete it to restart") from None
