"""Numeric precision of a training or inference run: `precision: fp32 | bf16 | fp16` in a config.

The weights, the optimizer state and every checkpoint stay fp32; bf16/fp16 apply through
`torch.autocast`, which runs matrix products and convolutions in the low precision and keeps
reductions, softmax and losses in fp32. fp16 needs a gradient scaler and a CUDA device (CPU
autocast has no fp16 kernels worth using); bf16 runs on CPUs with AVX-512/AMX bf16 units and on GPUs.
"""
import contextlib

import torch

from ser.errors import SerError

PRECISIONS = ("fp32", "bf16", "fp16")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision, device, where="precision"):
    """SerError unless `precision` is known and runs on `device`."""
    if precision not in PRECISIONS:
        raise SerError(f"{where}: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise SerError(f"{where}: fp16 needs a CUDA device (this run is on {torch.device(device).type}); "
                       f"use bf16 or fp32")


def amp_dtype(precision):
    """The autocast dtype of `precision` (None for fp32)."""
    return AMP_DTYPES.get(precision)


def runnable_precision(precision, device):
    """The precision a model trained at `precision` is run at on `device` for inference: fp16
    has no CPU kernels worth using, so there it runs fp32 (training refuses fp16 on a CPU)."""
    return "fp32" if precision == "fp16" and torch.device(device).type != "cuda" else precision


def autocast(precision, device):
    """Context manager running the enclosed forward pass at `precision` on `device`."""
    dtype = amp_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def grad_scaler(precision, device):
    """A GradScaler that is active for fp16 only (a no-op pass-through otherwise)."""
    device = torch.device(device)
    return torch.amp.GradScaler(device.type if device.type == "cuda" else "cpu",
                                enabled=precision == "fp16")


def prepare_model(model, device):
    """`model` on `device`; a model with 2-D convolutions in channels_last memory format, for
    which oneDNN (CPU) and cuDNN (GPU) have much faster kernels (about 1.4-1.7x for the
    DenseNets and CNNs in fp32 on one CPU core, see bench/bench_models.py). Numerics are those
    of the same convolutions in another memory order; state dicts load into either format."""
    model = model.to(device)
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model
