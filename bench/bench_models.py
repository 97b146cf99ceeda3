#!/usr/bin/env python3
"""Benchmark the SER models at the papers' and the CPU configs' sizes: parameters, GFLOPs per
segment, training and inference segments/s in fp32 and bf16, the achieved GFLOP/s and that as a
percentage of the same-process matrix-multiply rate of the same precision (gemm_rate.py).

What each column times (random segments, `--batch` of them; on a machine shared with other jobs the
fastest step is the closest estimate of the unloaded speed):

- `plain`: the trainer as it was before precision settings existed: fp32, the model in the
  default (contiguous) memory format, its layers run in the textbook order (the ReLU before the
  max pooling, a DenseNet transition's convolution before its pooling: `textbook_order`); the
  allocator is the process's (`--allocator system` for the C library's own, as it was);
- `fp32`, `bf16`: the trainer now (ser.runtime.precision.prepare_model puts 2-D convolution
  models in channels_last; bf16 is torch.autocast on the forward pass, loss and weights fp32);
- training = forward + cross-entropy + backward + Adam step; inference = no-grad eval forward.

Each measurement is the fastest of `--steps` rounds after `--warmup` rounds; a round runs every
setting's training and inference step and the fp32 and bf16 reference GEMMs once, one after the other,
so that the load of a shared machine weighs on all of them alike.

GFLOP/s counts 3x the forward FLOPs for a training step (backward ~ 2x forward). The reference
rate (`%mm`) is the faster of `torch.matmul` and the convolution library's GEMM on the same
1024^3 (GPU: 8192^3) products at the same precision and thread count (bench/gemm_rate.py: on
CPUs where MKL runs slower code paths the two differ by about 2x in fp32); both are printed, and
their bf16/fp32 ratio: the most bf16 can speed up a step whose fp32 path already runs at the GEMM
rate (about 2x without AMX units, more with them).

Denormal floats are flushed to zero as the trainer does (ser.runtime.distributed.setup).

Example:
  bench/bench_models.py                      # all models, paper and CPU sizes, 1 thread
  bench/bench_models.py --models densenet --sizes paper --steps 3
  bench/bench_models.py --allocator system   # glibc's own malloc policy (ser.runtime.allocator)
"""
import argparse
import os
import sys

import torch
import yaml
from torch import nn

from ser.errors import SerError, run_main
from ser.models import MODELS, build_model, model_class
from ser.models.complexity import count_parameters, flops_per_segment
from ser.models.densenet import Transition
from ser.runtime.allocator import add_allocator_option, keep_freed_memory
from ser.runtime.precision import autocast, prepare_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # the sibling bench modules, also when imported
from gemm_rate import gemm_steps, timed  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_CONF = os.path.join(ROOT, "egs", "TEMPLATE", "conf", "train_{}.yaml")
FEAT_DIM = {"cnn_blstm": 80}   # mel bands (paper 2); the others read 128-bin spectrograms (paper 1)
SETTINGS = ("plain", "fp32", "bf16")


def model_options(name, size):
    """model_conf of `size` 'paper' (the model defaults = conf/tuning) or 'cpu' (egs/emodb/conf)."""
    if size == "paper":
        return {}
    with open(CPU_CONF.format(name)) as f:
        return yaml.safe_load(f).get("model_conf") or {}


def textbook_order(model):
    """`model` run as it was before the layer-order speed-ups (ser.models.common.bn_relu_max_pool,
    ser.models.densenet.Transition): the same function and parameters, more element-wise work."""
    for module in model.modules():
        if isinstance(module, Transition):
            module.forward = nn.Sequential.forward.__get__(module)
        elif isinstance(module, nn.Sequential):
            keys = list(module._modules)
            for a, b in zip(keys, keys[1:]):
                if isinstance(module[int(a)], nn.MaxPool2d) and isinstance(module[int(b)], nn.ReLU):
                    module._modules[a], module._modules[b] = module._modules[b], module._modules[a]
    return model


def setting_steps(name, options, setting, batch, frames, num_classes, device):
    """(training step, inference step) closures of one model at one setting."""
    feat_dim = FEAT_DIM.get(name, 128)
    torch.manual_seed(0)
    model = build_model(name, num_classes, feat_dim, **options)
    model = textbook_order(model).to(device) if setting == "plain" else prepare_model(model, device)
    precision = "bf16" if setting == "bf16" else "fp32"
    x = torch.randn(batch, frames, feat_dim, device=device)
    y = torch.randint(0, num_classes, (batch,), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        with autocast(precision, device):
            logits = model(x)
        torch.nn.functional.cross_entropy(logits.float(), y).backward()
        opt.step()

    def infer_step():
        model.eval()
        with torch.no_grad(), autocast(precision, device):
            model(x)

    return train_step, infer_step


def bench_model(name, size, batch, frames, num_classes, steps, warmup, device):
    """Size, FLOPs, and the fastest of `steps` rounds per measurement; a round times every
    setting and the matmuls once, one after the other, so that load changes hit them alike."""
    options = model_options(name, size)
    feat_dim = FEAT_DIM.get(name, 128)
    model = build_model(name, num_classes, feat_dim, **options)
    row = {"model": name, "size": size, "params": count_parameters(model),
           "gflops": flops_per_segment(model, frames, feat_dim) / 1e9}
    runs = {}
    for setting in SETTINGS:
        runs[f"train_{setting}"], runs[f"infer_{setting}"] = setting_steps(
            name, options, setting, batch, frames, num_classes, device)
    gemms = {f"gemm_{p}_{kind}": pair for p in ("fp32", "bf16")
             for kind, pair in gemm_steps(p, device).items()}
    for k, (step, _) in gemms.items():
        runs[k] = step
    best = {k: float("inf") for k in runs}
    for r in range(warmup + steps):
        for k, step in runs.items():
            t = timed(step, device)
            if r >= warmup:
                best[k] = min(best[k], t)
    for k in runs:
        row[k] = gemms[k][1] / best[k] if k in gemms else batch / best[k]
    for p in ("fp32", "bf16"):
        row[f"gemm_{p}"] = max(row[f"gemm_{p}_matmul"], row[f"gemm_{p}_conv1x1"])
    return row


def format_table(rows):
    """Rows of `bench_model` results as a text table."""
    head = (f"{'model':<22}{'size':<6}{'params':>10}{'GF/seg':>8} |"
            f"{'train seg/s: plain':>19}{'fp32':>7}{'bf16':>7}{'x plain':>8} |"
            f"{'infer seg/s: fp32':>18}{'bf16':>7} |"
            f"{'train GF/s fp32':>16}{'%mm':>5}{'bf16':>7}{'%mm':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        g = 3 * r["gflops"]
        gf32, gf16 = g * r["train_fp32"], g * r["train_bf16"]
        lines.append(
            f"{r['model']:<22}{r['size']:<6}{r['params']:>10,}{r['gflops']:>8.3f} |"
            f"{r['train_plain']:>19.1f}{r['train_fp32']:>7.1f}{r['train_bf16']:>7.1f}"
            f"{r['train_bf16'] / r['train_plain']:>7.2f}x |"
            f"{r['infer_fp32']:>18.1f}{r['infer_bf16']:>7.1f} |"
            f"{gf32:>16.1f}{100 * gf32 / r['gemm_fp32']:>4.0f}%{gf16:>7.1f}{100 * gf16 / r['gemm_bf16']:>4.0f}%")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--models", nargs="+", default=list(MODELS), metavar="NAME",
                   help=f"models to benchmark (default: all of {', '.join(MODELS)})")
    p.add_argument("--sizes", nargs="+", default=["paper", "cpu"], choices=["paper", "cpu"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=256)
    p.add_argument("--num-classes", type=int, default=7)
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: a recipe training job's setting)")
    add_allocator_option(p)
    args = p.parse_args(argv)
    for opt, value in (("--batch", args.batch), ("--frames", args.frames), ("--steps", args.steps),
                       ("--threads", args.threads)):
        if value < 1:
            raise SerError(f"{opt} must be >= 1, got {value}")
    if args.warmup < 0:
        raise SerError(f"--warmup must be >= 0, got {args.warmup}")
    for name in args.models:
        model_class(name)  # unknown names fail before any timing
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    kept = keep_freed_memory(args.allocator)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SerError(f"--device {args.device}: CUDA is not available")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"# batch {args.batch} x {args.frames} frames, device {device}, torch threads "
          f"{torch.get_num_threads()}, torch {torch.__version__}, allocator "
          f"{'keep' if kept else 'system'}, load average {load}")
    rows = []
    for size in args.sizes:
        for name in args.models:
            print(f"# {name} ({size})...", file=sys.stderr, flush=True)
            rows.append(bench_model(name, size, args.batch, args.frames, args.num_classes,
                                    args.steps, args.warmup, device))
    print(format_table(rows))
    def mean(key):
        return sum(r[key] for r in rows) / len(rows)
    print(f"# %mm: of the faster GEMM of the same precision, GFLOP/s (mean over the models' "
          f"measurements): fp32 torch.matmul {mean('gemm_fp32_matmul'):.1f}, 1x1 convolution "
          f"{mean('gemm_fp32_conv1x1'):.1f}; bf16 torch.matmul {mean('gemm_bf16_matmul'):.1f}, "
          f"1x1 convolution {mean('gemm_bf16_conv1x1'):.1f}")
    print(f"# bf16 GEMM / fp32 GEMM: {mean('gemm_bf16') / mean('gemm_fp32'):.2f}x, the most bf16 can gain "
          f"on a step whose fp32 path already runs at the GEMM rate")
    return 0


if __name__ == "__main__":
    run_main(main)
