"""The torch files of a run: `model.pt` (the trained model) and `checkpoints/last.pt`.

Both are a dict written with torch.save to a temporary name and renamed into place, so a killed
run leaves the previous file, never half of one. Reading one that is truncated or foreign is a
one-line SerError naming the file. What the dicts hold is the business of the trainer that
writes them (ser.training.model_io, ser.diffusion.model_io, ser.runtime.checkpoint).
"""
import torch

from ser.data.atomic import atomic_open
from ser.errors import SerError

MODEL_FILE = "model.pt"


def save_torch_file(path, obj):
    """Write `obj` (a dict) to `path` with torch.save, atomically."""
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def cpu_state_dict(module):
    """The state dict of `module` as contiguous CPU copies (a channels_last model stores plain
    tensors, see ser.runtime.precision.prepare_model)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def load_torch_file(path, message, map_location="cpu", weights_only=True, keys=(), passthrough=()):
    """torch.load of a file this project wrote, with `keys` required in it.

    A failure (an exception of the types in `passthrough` excepted) is the one-line SerError
    `message.format(path=path, error="<exception type>: <exception>")`. weights_only=False is
    for files holding python/numpy objects (random states); they are our own outputs."""
    try:
        obj = torch.load(path, map_location=map_location, weights_only=weights_only)
        for key in keys:
            obj[key]
    except passthrough:
        raise
    except Exception as e:
        raise SerError(message.format(path=path, error=f"{type(e).__name__}: {e}")) from None
    return obj
