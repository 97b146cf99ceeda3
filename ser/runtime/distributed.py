"""Data-parallel training with torch.distributed, for programs started by torchrun
(utils/launch_train.sh).

torchrun starts one process ("rank") per GPU, or per CPU worker, and tells each its place
through environment variables: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
MASTER_PORT. `setup(ngpu)` reads them (the device: ser.runtime.device):

- WORLD_SIZE unset or 1: a single process, no process group; the device is cpu (--ngpu 0) or
  cuda:0 (--ngpu 1; None: cuda:0 if CUDA is available);
- WORLD_SIZE > 1: `init_process_group` with NCCL on GPUs (rank on cuda:LOCAL_RANK; --ngpu must be
  the number of processes on the node, LOCAL_WORLD_SIZE) or gloo on CPU (--ngpu 0).

Every other helper is a no-op (or the identity) in a single process, so a program calls them
unconditionally. The conventions of the training programs:

- rank 0 (`is_main()`) alone writes files (logs, checkpoints, models, `done`); all ranks read the
  same checkpoint on resume, so the experiment dir must be on a file system all nodes share;
- a decision that changes control flow (resume or not, LR change, early stop) is taken on rank 0
  and sent to the others with `broadcast_object`, never recomputed independently;
- the global batch is split between the ranks (`shard_bounds`), DDP averages the gradients;
- batch normalisation is per process unless the model is converted with
  `convert_sync_batchnorm` (torch's SyncBatchNorm on CUDA, `CpuSyncBatchNorm` below on CPU).
"""
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ser.errors import SerError
from ser.runtime.allocator import keep_freed_memory
from ser.runtime.device import process_device, rank_device


@dataclass
class DistEnv:
    """This process's place in the run (rank 0 of 1 in a single process)."""
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    backend: str = ""            # "" without a process group

    @property
    def is_main(self):
        return self.rank == 0


def _env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SerError(f"environment variable {name}={value!r} is not an integer") from None


def setup(ngpu=None):
    """Join the process group that torchrun set up (if any) and choose this process's device.

    Returns a DistEnv. Call `cleanup()` when done (try/finally).
    """
    # Backpropagating through long LSTMs drives gradients into denormal floats, which are very
    # slow on x86 CPUs (a cnn_blstm step: 3.3 s -> 0.6 s); flushing them to zero changes nothing
    # measurable. GPUs flush by default.
    torch.set_flush_denormal(True)
    keep_freed_memory()
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistEnv(0, 1, 0, 1, process_device(ngpu, launcher=True))
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    device, backend = rank_device(ngpu, local_rank, local_world)
    if backend == "nccl":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        kwargs = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, **kwargs)
    return DistEnv(rank, world, local_rank, local_world, device, backend)


def cleanup():
    """Leave the process group (no-op in a single process).

    Call it after the DDP-wrapped model is gone: a rank that destroys the group while another
    still communicates, or while its own DDP reducer is alive, can abort at exit ("terminate
    called without an active exception"), so every rank first waits for the others.
    """
    if dist.is_available() and dist.is_initialized():
        import gc

        gc.collect()
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def is_distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank():
    return dist.get_rank() if is_distributed() else 0


def world_size():
    return dist.get_world_size() if is_distributed() else 1


def is_main():
    """True on rank 0 (and in a single process): the process that writes files."""
    return rank() == 0


def _comm_device():
    """Tensors for NCCL collectives must live on this rank's GPU; gloo takes CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier():
    """Wait until every rank is here."""
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values):
    """Element-wise sum over the ranks of a sequence of numbers -> list of float (float64)."""
    values = [float(v) for v in values]
    if not is_distributed():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def all_reduce_mean(values):
    """Element-wise mean over the ranks -> list of float."""
    return [v / world_size() for v in all_reduce_sum(values)]


def broadcast_object(obj, src=0):
    """Rank `src`'s `obj` (picklable) on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def all_gather_object(obj):
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not is_distributed():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def shard_bounds(n, rank_, world):
    """[lo, hi) of rank `rank_`'s share of n items in order: contiguous, sizes differ by <= 1
    (the first n % world ranks get one more). The shares of ranks 0..world-1 concatenate to
    the whole range, so the global batch is the single-process batch."""
    base, extra = divmod(n, world)
    lo = rank_ * base + min(rank_, extra)
    return lo, lo + base + (1 if rank_ < extra else 0)


def per_process_batch(global_batch, world):
    """global batch / world size; SerError unless it divides evenly."""
    if global_batch % world:
        raise SerError(f"batch_size {global_batch} (the global batch) is not divisible by the "
                       f"{world} processes of the run: choose a multiple of {world}")
    return global_batch // world


def rank_seed(seed, rank_):
    """A seed for rank `rank_`'s own random streams (dropout), distinct for every (seed, rank)."""
    return int(np.random.SeedSequence([int(seed), int(rank_)]).generate_state(1)[0])


def wrap_ddp(model, device):
    """DistributedDataParallel around `model` (already on `device`); the model itself in a single
    process. DDP copies rank 0's parameters and buffers to every rank when it is built."""
    if not is_distributed():
        return model
    device = torch.device(device)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model):
    """The module inside a DDP wrapper (the object whose state_dict is saved)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def broadcast_buffers(model, src=0):
    """Copy rank `src`'s buffers (BN running statistics) to every rank, so that a model that is
    evaluated or saved is the same everywhere (with per-process BN they drift apart)."""
    if not is_distributed():
        return
    for buf in model.buffers():
        if buf.is_floating_point() or buf.dtype in (torch.int64, torch.int32):
            dist.broadcast(buf.data, src=src)


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation over the GLOBAL batch of all ranks, for CPU (gloo) runs, where torch's
    SyncBatchNorm refuses to run. In training, the per-channel sums, sums of squares and counts
    are summed over the ranks with the differentiable torch.distributed.nn all_reduce (its
    backward sums the gradients over the ranks, as SyncBatchNorm's does); running statistics
    are updated with the global mean and unbiased variance, identically on every rank.
    Parameter and buffer names are BatchNorm's, so state dicts load into the plain model.
    Statistics are accumulated in float64 (sum of squares minus squared mean)."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x):
        self._check_input_dim(x)
        batch_stats = self.training or not self.track_running_stats
        if not batch_stats or not is_distributed():
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce

        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        xd = x.double()
        local = torch.cat([xd.sum(dims), (xd * xd).sum(dims), xd.new_tensor([x.numel() / c])])
        total = differentiable_all_reduce(local)
        n = total[2 * c]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean * mean).clamp_min(0.0)
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                count = float(n)
                unbiased = var * (count / max(count - 1.0, 1.0))
                self.running_mean.mul_(1.0 - f).add_(f * mean.to(self.running_mean.dtype))
                self.running_var.mul_(1.0 - f).add_(f * unbiased.to(self.running_var.dtype))
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var.to(x.dtype).view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def _to_cpu_sync(module):
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
            module, (CpuSyncBatchNorm, nn.SyncBatchNorm)):
        out = CpuSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias   # the same Parameter objects
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _to_cpu_sync(child))
    return out


def convert_sync_batchnorm(model, device):
    """Every BatchNorm layer of `model` computing statistics over the global batch: torch's
    SyncBatchNorm on CUDA, CpuSyncBatchNorm on CPU. Returns the converted model (the same
    parameters); call it before building the optimizer and DDP. Identity in a single process."""
    if not is_distributed():
        return model
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _to_cpu_sync(model)
