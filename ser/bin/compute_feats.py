"""Compute features for every utterance of a data dir and write them as a Kaldi ark/scp pair.

    python3 -m ser.bin.compute_feats --config conf/feats/spec.yaml [--write-num-frames] \\
        data/train/split2/1 feats/raw_feats_train.1

reads DATA_DIR/wav.scp (paths or "command |"), extracts the features described by the YAML
config (see ser.features) and writes PREFIX.ark, PREFIX.scp and, with --write-num-frames,
PREFIX.utt2num_frames ("utt frames" lines). The scp refers to PREFIX.ark by the path given.

Outputs are atomic: old outputs are removed first, everything is written under temporary names
and renamed at the end, the scp last, so a killed job never leaves a complete-looking scp. An
unreadable, empty or too short recording stops the job with a one-line error naming the wav.scp
line, exit status 1 and no output files.
"""
import argparse
import contextlib
import os
import sys

import kaldiio
import torch
from tqdm import tqdm

from ser.audio import load_audio
from ser.data.atomic import atomic_open
from ser.data.kvfile import read_kv
from ser.errors import SerError, run_main
from ser.features import build_extractor, read_feats_config


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="compute_feats.py",
        description="Extract features for DATA_DIR/wav.scp into PREFIX.ark and PREFIX.scp.")
    p.add_argument("--config", required=True, help="feature config YAML (e.g. conf/feats/spec.yaml)")
    p.add_argument("--write-num-frames", action="store_true",
                   help="also write PREFIX.utt2num_frames")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--num-threads", type=int, default=1,
                   help="torch CPU threads (default 1: parallel jobs each get one core)")
    p.add_argument("data_dir", help="Kaldi data dir with wav.scp")
    p.add_argument("prefix", help="output prefix: writes PREFIX.ark and PREFIX.scp")
    return p.parse_args(argv)


def _remove(*paths):
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def compute_feats(extractor, wav_scp, ark_path, scp_path, num_frames_path=None):
    """Extract features for every wav.scp entry into ark/scp (see module docstring)."""
    wavs = read_kv(wav_scp)
    if not wavs:
        raise SerError(f"{wav_scp}: no utterances")
    # A stale scp (or a stale ark an old scp points into) must not survive a failed run.
    outputs = [scp_path, ark_path] + ([num_frames_path] if num_frames_path else [])
    _remove(*outputs)
    tmp_ark, tmp_scp = ark_path + ".tmp", scp_path + ".tmp"
    num_frames = {}
    try:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for lineno, (utt, entry) in enumerate(tqdm(wavs.items(), desc="compute_feats",
                                                       unit="utt", mininterval=2.0), 1):
                try:
                    wave, sr = load_audio(entry, extractor.sample_rate)
                    feats = extractor(wave, sr)
                except SerError as e:
                    msg = " ".join(str(e).split())  # one line, whatever soundfile says
                    raise SerError(f"{wav_scp}:{lineno}: utterance '{utt}': {msg}") from None
                writer[utt] = feats
                num_frames[utt] = feats.shape[0]
        # The scp names the temporary ark; point it at the final name.
        with open(tmp_scp, encoding="utf-8") as f:
            lines = f.read().splitlines()
        fixed = []
        for line in lines:
            utt, loc = line.split(" ", 1)
            path, offset = loc.rsplit(":", 1)
            if path != tmp_ark:
                raise SerError(f"{tmp_scp}: unexpected ark path in '{line}'")
            fixed.append(f"{utt} {ark_path}:{offset}\n")
        os.replace(tmp_ark, ark_path)
        if num_frames_path:
            with atomic_open(num_frames_path, "w", encoding="utf-8") as f:
                f.writelines(f"{u} {n}\n" for u, n in num_frames.items())
        with atomic_open(scp_path, "w", encoding="utf-8") as f:
            f.writelines(fixed)
    except BaseException:
        _remove(tmp_ark, *outputs)
        raise
    finally:
        _remove(tmp_scp)
    return num_frames


def main(argv=None):
    args = parse_args(argv)
    if args.num_threads < 1:
        raise SerError(f"--num-threads must be >= 1, got {args.num_threads}")
    torch.set_num_threads(args.num_threads)
    wav_scp = os.path.join(args.data_dir, "wav.scp")
    if not os.path.isfile(wav_scp):
        raise SerError(f"no wav.scp in data dir '{args.data_dir}'")
    if os.path.exists(os.path.join(args.data_dir, "segments")):
        raise SerError(f"{args.data_dir}/segments: segment files are not supported")
    config = read_feats_config(args.config)
    extractor = build_extractor(config, device=args.device, source=args.config)
    prefix_dir = os.path.dirname(args.prefix)
    if prefix_dir:
        os.makedirs(prefix_dir, exist_ok=True)
    num_frames = compute_feats(
        extractor, wav_scp, args.prefix + ".ark", args.prefix + ".scp",
        args.prefix + ".utt2num_frames" if args.write_num_frames else None)
    print(f"compute_feats.py: wrote {len(num_frames)} utterances ({config['type']}, "
          f"dim {extractor.dim}, {sum(num_frames.values())} frames) to {args.prefix}.scp",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
