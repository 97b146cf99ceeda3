"""The torch device of a process, chosen from its --ngpu option.

- `process_device(ngpu)`: a training or generation process started alone (--ngpu default None):
  None -> cuda:0 when CUDA is available, else the CPU; 0 -> the CPU; 1 -> cuda:0 (SerError
  without CUDA). More GPUs are refused; `launcher=True` (the training programs) names
  utils/launch_train.sh, which starts one process per GPU.
- `rank_device(ngpu, local_rank, local_world)`: one of the processes torchrun started
  (ser.runtime.distributed.setup): cuda:LOCAL_RANK with one GPU per process (--ngpu = the
  processes on the node; None: all of them when CUDA is available), or the CPU with --ngpu 0.
- `inference_device(ngpu)`: scoring and inference (--ngpu default 0): "cuda" for any ngpu > 0,
  else "cpu".
"""
import os

import torch

from ser.errors import SerError


def process_device(ngpu=None, launcher=False):
    """torch.device of a single process for --ngpu (see the module docstring)."""
    if ngpu is None:
        ngpu = 1 if torch.cuda.is_available() else 0
    if ngpu == 0:
        return torch.device("cpu")
    if ngpu != 1:
        if not launcher:
            raise SerError(f"--ngpu {ngpu}: only 0 (CPU) or 1 GPU is supported")
        if ngpu < 0:
            raise SerError(f"--ngpu {ngpu}: must be >= 0")
        raise SerError(f"--ngpu {ngpu} needs {ngpu} processes: start the program with "
                       f"utils/launch_train.sh --ngpu {ngpu} (torchrun), or use --ngpu 1")
    if not torch.cuda.is_available():
        raise SerError("--ngpu 1 but CUDA is not available")
    return torch.device("cuda:0")


def rank_device(ngpu, local_rank, local_world):
    """(torch.device, process-group backend) of torchrun's process `local_rank` of the
    `local_world` on this node: (cuda:LOCAL_RANK, "nccl") or (cpu, "gloo")."""
    if ngpu is None:
        ngpu = local_world if torch.cuda.is_available() else 0
    if ngpu == 0:
        return torch.device("cpu"), "gloo"
    if ngpu != local_world:
        raise SerError(f"--ngpu {ngpu} but torchrun started {local_world} processes on this node: "
                       f"one process per GPU (torchrun --nproc_per_node {ngpu})")
    if not torch.cuda.is_available():
        raise SerError(f"--ngpu {ngpu} but CUDA is not available")
    if local_rank >= torch.cuda.device_count():
        raise SerError(f"local rank {local_rank} has no GPU: {torch.cuda.device_count()} visible "
                       f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
    return torch.device("cuda", local_rank), "nccl"


def inference_device(ngpu):
    """'cuda' for ngpu > 0 (SerError if there is none), else 'cpu' (--ngpu of scoring and infer)."""
    if ngpu > 0:
        if not torch.cuda.is_available():
            raise SerError(f"--ngpu {ngpu} but no CUDA device is available")
        return "cuda"
    return "cpu"
