#!/usr/bin/env python3
"""Benchmark the SER models: parameters, forward GFLOPs per segment, training and inference
throughput (segments/s) on random segments.

Training throughput times forward + cross-entropy + backward + Adam step, inference throughput a
no-grad forward in eval mode; both after `--warmup` untimed steps, over `--steps` timed steps,
reported as the median step ("med") and the fastest step ("best"). On a machine shared with other
jobs "best" is the closer estimate of the unloaded speed; the load average is printed first.

Denormal floats are flushed to zero (`torch.set_flush_denormal(True)`) unless `--keep-denormals`:
back-propagating through long LSTMs from the last step only makes gradients decay into the
subnormal range, where x86 arithmetic is ~10x slower (cnn_blstm trains ~4x slower without it).

Example:
  bench/bench_models.py --models densenet_lstm_highway cnn --steps 5
  bench/bench_models.py --models densenet_lstm_highway --batch 8 \\
      --options '{"init_kernel": 3, "init_stride": 1, "init_pool": 1}'
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from tqdm import tqdm

from ser.errors import SerError, run_main
from ser.models import MODELS, build_model, model_class
from ser.models.complexity import count_parameters, flops_per_segment


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step, device, warmup, steps):
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def bench_model(name, options, num_classes, batch, frames, feat_dim, steps, warmup, device):
    """Return a dict of the model's size, FLOPs and throughputs."""
    torch.manual_seed(0)
    model = build_model(name, num_classes, feat_dim, **options)
    gflops = flops_per_segment(model, frames, feat_dim) / 1e9
    model.to(device)
    x = torch.randn(batch, frames, feat_dim, device=device)
    y = torch.randint(0, num_classes, (batch,), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    def infer_step():
        with torch.no_grad():
            model(x)

    model.train()
    train_time = _timed(train_step, device, warmup, steps)
    model.eval()
    infer_time = _timed(infer_step, device, warmup, steps)
    return {"model": name, "params": count_parameters(model), "gflops": gflops,
            "train_med": batch / train_time[0], "train_best": batch / train_time[1],
            "infer_med": batch / infer_time[0], "infer_best": batch / infer_time[1]}


def format_table(rows):
    """Rows of `bench_model` results as a text table (throughputs in segments/s)."""
    cols = ("train_med", "train_best", "infer_med", "infer_best")
    head = f"{'model':<24}{'params':>12}{'GFLOPs/seg':>12}" + "".join(f"{c:>12}" for c in cols)
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<24}{r['params']:>12,}{r['gflops']:>12.3f}"
                     + "".join(f"{r[c]:>12.1f}" for c in cols))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--models", nargs="+", default=list(MODELS), metavar="NAME",
                   help=f"models to benchmark (default: all of {', '.join(MODELS)})")
    p.add_argument("--options", default="{}",
                   help="JSON dict of model options applied to every model (like model_conf)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=256)
    p.add_argument("--feat-dim", type=int, default=128)
    p.add_argument("--num-classes", type=int, default=4)
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--keep-denormals", action="store_true",
                   help="do not flush denormal floats to zero (slow LSTM backward on x86 CPUs)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    try:
        options = json.loads(args.options)
    except json.JSONDecodeError as e:
        raise SerError(f"--options is not valid JSON: {e}") from None
    if not isinstance(options, dict):
        raise SerError("--options must be a JSON object (a dict of model options)")
    for name, value in (("--batch", args.batch), ("--frames", args.frames), ("--feat-dim", args.feat_dim),
                        ("--steps", args.steps)):
        if value < 1:
            raise SerError(f"{name} must be >= 1, got {value}")
    if args.threads < 0:
        raise SerError(f"--threads must be >= 0, got {args.threads}")
    if args.warmup < 0:
        raise SerError(f"--warmup must be >= 0, got {args.warmup}")
    for name in args.models:
        model_class(name)  # unknown names fail before any timing
    if args.threads:
        torch.set_num_threads(args.threads)
    flush = not args.keep_denormals and torch.set_flush_denormal(True)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SerError(f"--device {args.device}: CUDA is not available")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"# batch {args.batch}, {args.frames} frames x {args.feat_dim}, device {device}, "
          f"torch threads {torch.get_num_threads()}, flush denormals {bool(flush)}, load average {load}, "
          f"options {options}")
    rows = []
    for name in tqdm(args.models, desc="models", unit="model", file=sys.stderr):
        rows.append(bench_model(name, options, args.num_classes, args.batch, args.frames, args.feat_dim,
                                args.steps, args.warmup, device))
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    run_main(main)
