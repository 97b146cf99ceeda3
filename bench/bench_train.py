"""Benchmark of one training configuration: training and inference speed per segment.

    tools/venv/bin/python bench/bench_train.py --config egs/TEMPLATE/conf/train_densenet_lstm_highway.yaml \
        [--feat-dim 128] [--num-classes 7] [--batches 5] [--num-threads 2] [--ngpu 0]

Runs `--batches` Adam steps on random segments of the config's size and batch size (after one
warm-up step), then inference on as many segments, and prints segments/s, s/batch, the
parameter count, and the estimated time of one EmoDB-sized epoch (`--epoch-segments`, default
430: ~8 training speakers of the 535-utterance 2.0 s copy, one segment each, no augmentation).
Numbers depend on the machine's load; use them to size CPU configs, not as results.
"""
import argparse
import time

import torch
import torch.nn.functional as F

from ser.errors import run_main
from ser.models import build_model
from ser.runtime.allocator import add_allocator_option, keep_freed_memory
from ser.runtime.device import process_device
from ser.training.config import load_config
from ser.training.inference import segment_posteriors


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--feat-dim", type=int, default=128)
    p.add_argument("--num-classes", type=int, default=7)
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--epoch-segments", type=int, default=430)
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--ngpu", type=int, default=None)
    add_allocator_option(p)
    args = p.parse_args(argv)
    keep_freed_memory(args.allocator)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    cfg = load_config(args.config)
    device = process_device(args.ngpu)
    torch.manual_seed(0)
    model = build_model(cfg["model"], args.num_classes, args.feat_dim, **cfg["model_conf"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["optim"]["lr"])
    bs, length = cfg["batch_size"], cfg["segment"]["length"]
    x = torch.randn(bs, length, args.feat_dim, device=device)
    y = torch.randint(0, args.num_classes, (bs,), device=device)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.train()
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(args.batches):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = (time.perf_counter() - t) / args.batches
    segs = x.cpu().numpy().repeat(max(1, args.batches), axis=0)
    t = time.perf_counter()
    segment_posteriors(model, segs, device, cfg["valid_batch_size"])
    infer_rate = len(segs) / (time.perf_counter() - t)
    params = sum(p.numel() for p in model.parameters())
    print(f"model {cfg['model']} params {params} device {device} threads {torch.get_num_threads()}")
    print(f"train: {train_s:.3f} s/batch of {bs} = {bs / train_s:.1f} segments/s; "
          f"EmoDB-sized epoch ({args.epoch_segments} segments) ~ {args.epoch_segments / bs * train_s:.0f} s")
    print(f"inference: {infer_rate:.1f} segments/s")
    return 0


if __name__ == "__main__":
    run_main(main)
