"""The reference matrix-multiply rate of the benchmarks' "% of matmul" columns.

A model's convolutions run in oneDNN (CPU) or cuDNN (GPU), its linear and LSTM layers mostly in
the BLAS behind torch.matmul (MKL on the CPU, cuBLAS on a GPU). The two libraries need not reach
the same rate on one machine: MKL picks slower code paths on non-Intel CPUs (on an AMD EPYC with
AVX-512, one thread: torch.matmul about 105 fp32 GFLOP/s, the same product through oneDNN about
210), so a percentage of torch.matmul alone can exceed 100 % and flatter a model. The reference
is therefore the faster of:

- `matmul`: torch.matmul of two n x n matrices, `reps` times;
- `conv1x1`: the same FLOPs as one 1x1 convolution of a channels_last (reps, n, n/8, 8) map with
  an n x n kernel, i.e. a (reps*n) x n by n x n product computed by the convolution library.

Both are (step, GFLOP per step) pairs, so that a benchmark can time them in its own rounds,
between the steps it measures, and load on a shared machine weighs on all of them alike. The
module also holds the timing helpers the benchmarks share (`sync`, `timed`).
"""
import time

import torch

from ser.runtime.precision import amp_dtype


def default_size(device):
    """n of the reference products: 1024 on a CPU, 8192 on a GPU (smaller leave it mostly idle)."""
    return 8192 if torch.device(device).type == "cuda" else 1024


def conv_as_gemm(x, weight):
    """x (m, n) @ weight (k, n)^T as a 1x1 convolution (the convolution library's GEMM)."""
    m, n = x.shape
    image = x.reshape(m // 64, 8, 8, n).permute(0, 3, 1, 2)   # channels_last view, no copy
    out = torch.nn.functional.conv2d(image, weight[:, :, None, None])
    return out.permute(0, 2, 3, 1).reshape(m, weight.shape[0])


def gemm_steps(precision, device, n=None, reps=4):
    """{'matmul': (step, GFLOP), 'conv1x1': (step, GFLOP)} at `precision` on `device`."""
    device = torch.device(device)
    n = n or default_size(device)
    dtype = amp_dtype(precision) or torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    x = torch.randn(reps * n, n, device=device, dtype=dtype)
    gflop = 2 * n ** 3 * reps / 1e9
    return {"matmul": (lambda: [a @ b for _ in range(reps)], gflop),
            "conv1x1": (lambda: conv_as_gemm(x, b), gflop)}


def sync(device):
    """Wait for the queued work of a GPU `device` (a CPU runs synchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, device):
    """Seconds of one call of `step`."""
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def gemm_gflops(precision, device, n=None, rounds=5):
    """({'matmul': GFLOP/s, 'conv1x1': GFLOP/s}, the faster) from the fastest of `rounds` calls,
    after one untimed call of each."""
    device = torch.device(device)
    rates = {}
    for name, (step, gflop) in gemm_steps(precision, device, n).items():
        step()
        rates[name] = gflop / min(timed(step, device) for _ in range(rounds))
    return rates, max(rates.values())
