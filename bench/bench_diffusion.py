#!/usr/bin/env python3
"""Timings of the diffusion model of a config, per precision: training steps/s and sampling time
per segment, with the achieved GFLOP/s as a percentage of the same-process matrix-multiply rate.

    tools/venv/bin/python bench/bench_diffusion.py [--config egs/emodb/conf/diffusion.yaml] \\
        [--precisions fp32 bf16] [--sampling-steps 50 250 T] [--batch-size 8] [--train-steps 10] \\
        [--reps 1] [--num-threads 1] [--ngpu 0] [--extrapolate-full]

Training: `--train-steps` optimiser steps of the real loop (ser.diffusion.trainer) on random
80 x 256 segments in [-1, 1] with EmoDB-like condition strings, batch = the config's batch_size
(and its segment.crop), after 2 warm-up steps, under each precision of --precisions (the
config's own precision is ignored). GFLOP per step: matrix products and convolutions of one
forward + backward, counted by torch.utils.flop_counter; GFLOP/s: that over the measured step
time; pct_of_gemm: that as a percentage of the faster of torch.matmul and the convolution
library's GEMM on square products in the same dtype (bench/gemm_rate.py), measured in the same
process just before (so machine load cancels); both rates are printed.
Sampling: `p_sample_loop` of S strided steps (T = the config's
process.steps) on --batch-size segments; time per segment = batch time / batch size.
With --extrapolate-full, S = T is not run but estimated as T x the per-step time measured at
the largest other S (the network cost per step does not depend on S).
A sentencepiece conditioner is trained on the fly in a temporary dir; a BERT conditioner needs
its `pretrained` model locally.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ser.diffusion import config as DC  # noqa: E402
from ser.diffusion.conditioning import condition_text, train_sentencepiece  # noqa: E402
from ser.diffusion.model_io import build_nets  # noqa: E402
from ser.diffusion.respace import build_diffusion  # noqa: E402
from ser.diffusion.trainer import DiffusionTrainer  # noqa: E402
from ser.runtime import precision as P  # noqa: E402
from ser.runtime.allocator import add_allocator_option, keep_freed_memory  # noqa: E402
from ser.runtime.device import process_device  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # the sibling bench modules
from gemm_rate import gemm_gflops, sync  # noqa: E402

SENTENCES = ["Der Lappen liegt auf dem Eisschrank.", "Das will sie am Mittwoch abgeben.",
             "Heute abend könnte ich es ihm sagen.", "Das schwarze Stück Papier befindet sich da oben "
             "neben dem Holzstück.", "In sieben Stunden wird es soweit sein."]
EMOTIONS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]
SPEAKERS = ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]


def conditions(n, rng):
    return [condition_text(SENTENCES[rng.integers(len(SENTENCES))], EMOTIONS[rng.integers(len(EMOTIONS))],
                           SPEAKERS[rng.integers(len(SPEAKERS))]) for _ in range(n)]


def step_flops(trainer):
    """FLOPs (matmul/conv/attention) of one training step's forward + backward."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.train_step()
    return counter.get_total_flops()


def main(argv=None):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=os.path.join(repo, "egs/emodb/conf/diffusion.yaml"))
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    p.add_argument("--sampling-steps", nargs="+", default=["50", "250", "T"], help="values of S; 'T' = all steps")
    p.add_argument("--batch-size", type=int, default=8, help="segments per sampling batch")
    p.add_argument("--train-steps", type=int, default=10)
    p.add_argument("--reps", type=int, default=1, help="repetitions of each sampling measurement")
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--ngpu", type=int, default=0)
    p.add_argument("--matmul-size", type=int, default=None, help="n of the n x n reference products (default 2048 CPU, 8192 GPU)")
    p.add_argument("--extrapolate-full", action="store_true", help="estimate S = T instead of running it")
    add_allocator_option(p)
    args = p.parse_args(argv)
    keep_freed_memory(args.allocator)
    torch.set_num_threads(args.num_threads)
    device = process_device(args.ngpu)
    for prec in args.precisions:
        P.check_precision(prec, device, "--precisions")
    cfg = DC.load_config(args.config)
    T = cfg["process"]["steps"]
    rng = np.random.default_rng(0)
    n_mels, length = 80, cfg["segment"]["length"]
    mm_n = args.matmul_size or (8192 if device.type == "cuda" else 2048)
    values = sorted({T if s == "T" else int(s) for s in args.sampling_steps})

    train_rows, sample_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cond_conf = DC.conditioner_conf(cfg)
        if cond_conf["type"] == "sentencepiece":
            texts = SENTENCES + [condition_text(s, e, k) for s in SENTENCES for e in EMOTIONS for k in SPEAKERS]
            cond_conf["spm_model"] = train_sentencepiece(texts, os.path.join(tmp, "spm"),
                                                         vocab_size=cfg["spm"]["vocab_size"])
        n_seg = 256
        segments = np.clip(rng.normal(-0.4, 0.3, (n_seg, n_mels, length)), -1, 1).astype(np.float32)
        data = SimpleNamespace(segments=segments, conditions=conditions(n_seg, rng))
        for prec in args.precisions:
            torch.manual_seed(0)
            nets = build_nets(DC.denoiser_conf(cfg, n_mels), cond_conf)
            n_params = sum(p.numel() for p in nets.parameters())
            trainer = DiffusionTrainer(nets, data, {**cfg, "precision": prec}, tmp, device, 0, {})
            gemm, mm = gemm_gflops(prec, device, mm_n)
            for _ in range(2):
                trainer.train_step()
            flops = step_flops(trainer)
            sync(device)
            start = time.perf_counter()
            for _ in range(args.train_steps):
                trainer.train_step()
            sync(device)
            step_time = (time.perf_counter() - start) / args.train_steps
            gflops = flops / step_time / 1e9
            train_rows.append((prec, 1 / step_time, cfg["batch_size"] / step_time, flops / 1e9, gflops,
                               100 * gflops / mm, mm, gemm["matmul"], gemm["conv1x1"]))

            nets.eval()
            per_step = None
            for S in values:
                if S == T and args.extrapolate_full and per_step is not None:
                    sample_rows.append((prec, S, per_step * S, "extrapolated"))
                    continue
                sampler = build_diffusion(cfg["process"], sampling_steps=S)
                times = []
                with torch.no_grad(), P.autocast(prec, device):
                    cond = nets["conditioner"](conditions(args.batch_size, rng))
                    for r in range(args.reps):
                        gen = torch.Generator(device).manual_seed(r)
                        sync(device)
                        start = time.perf_counter()
                        sampler.p_sample_loop(nets["denoiser"], (args.batch_size, n_mels, length), cond,
                                              generator=gen, device=device)
                        sync(device)
                        times.append((time.perf_counter() - start) / args.batch_size)
                t = statistics.median(times)
                per_step = t / S
                sample_rows.append((prec, S, t, "measured"))
            del trainer, nets

    print(f"# config {args.config}: T={T}, denoiser {cfg['denoiser']}, "
          f"{n_params / 1e6:.2f} M trainable parameters, device {device}, {args.num_threads} thread(s), "
          f"segment crop {cfg['segment']['crop'] or length} frames")
    print(f"# training: batch {cfg['batch_size']}, {args.train_steps} steps; GEMMs {mm_n}^3 in the same dtype")
    print("precision\tsteps_per_s\tsegments_per_s\tgflop_per_step\tgflop_per_s\tpct_of_gemm\tgemm_gflop_per_s"
          "\tmatmul_gflop_per_s\tconv1x1_gflop_per_s")
    for prec, sps, segs, gf, rate, pct, mm, matmul, conv in train_rows:
        print(f"{prec}\t{sps:.3f}\t{segs:.2f}\t{gf:.2f}\t{rate:.1f}\t{pct:.1f}\t{mm:.1f}\t{matmul:.1f}\t{conv:.1f}")
    print(f"# sampling: batch {args.batch_size}, {args.reps} repetition(s)")
    print("precision\tS\ts_per_segment\tms_per_segment_step\tsegments_per_hour\thow")
    for prec, S, t, how in sample_rows:
        print(f"{prec}\t{S}\t{t:.3f}\t{1000 * t / S:.2f}\t{3600 / t:.0f}\t{how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
