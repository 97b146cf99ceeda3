"""Generate synthetic mel segments with a fold's trained diffusion model.

    python -m ser.bin.generate --model-dir exp/all/diffusion_<hash>/fold.1 \\
        --num-per-combination 1 --sampling-steps 50 [--sampler ddim [--eta 0]] [--guidance-weight W] \\
        [--max-combinations M] --seed 1 \\
        --out-data exp/all/diffusion_<hash>/fold.1/syn_s50_n1 --out-feats exp/.../fold.1/syn_s50_n1/feats \\
        [--ngpu 0] [--batch-size 16] [--trim-padding true]

Conditions: every (speaker, emotion, sentence) triple of the fold's training utterances
(<model-dir>/combinations.tsv), or --max-combinations M of them drawn with --seed (the same M
for the same seed). For each, N segments of n_mels x 256 frames are sampled with the EMA weights
(model.pt holds only those) from x_T ~ N(0, I) through S strided steps (improved DDPM,
ser.diffusion.build_diffusion, with the model's prediction target and variance bound): ancestral
steps with the learned variance (the paper's), or with --sampler ddim DDIM steps (noise η, 0:
deterministic); a model trained on band-normalised mels (ser.diffusion.normalize) has its samples
mapped back. A model trained with a guide snapshot (`guidance` in its config) samples with
autoguidance at its config's weight, or at --guidance-weight W (1: unguided; ser.diffusion.guidance).

The output is a data dir that passes `utils/validate_data_dir.py --no-wav`:
  feats.scp (written last; the ark goes to --out-feats), utt2emo, utt2spk (= the CONDITIONING
  speaker, a training speaker of the fold, so leave-one-speaker-out stays correct), spk2utt,
  text (the sentence), utt2cond (the full condition string), utt2num_frames, conf.yaml (the mel
  feature config the model was trained on), model_train.list (the utterances the diffusion model
  was trained on: the classifier checks them against its fold's train.list) and synthetic.yaml
  (model dir, S, N, sampler, guidance weight, seed). There is no utt2uniq: no utterance is a copy of a real one.
Utterance ids are `<speaker>-syn<k>-<emotion>` (prefixed by the speaker id as Kaldi wants).

--trim-padding (default true) cuts trailing frames whose every band is below -0.95 (the -1
padding of short utterances the model learnt to continue with silence), keeping >= 1 frame: the
classifier then pads the segment after normalisation, exactly as it pads a real utterance.
A re-run with the same arguments on a complete output exits at once ("already generated"); with
other arguments the output is regenerated (feats.scp is removed first).
"""
import contextlib
import hashlib
import os
import sys
import time

import kaldiio
import numpy as np
import torch

from ser.data.atomic import atomic_open, atomic_write_text
from ser.data.cli import non_negative_int, positive_int
from ser.data.datadir import sorted_spk2utt
from ser.data.kvfile import write_kv
from ser.data.synthetic_set import made_with, write_info
from ser.diffusion.conditioning import condition_text
from ser.diffusion.data import read_combinations
from ser.diffusion.gaussian_diffusion import SAMPLERS
from ser.diffusion.guidance import guidance_weight
from ser.diffusion.model_io import load_diffusion_model
from ser.diffusion.sampling import PAD_THRESHOLD, sample_segments
from ser.errors import SerError, run_main
from ser.runtime.allocator import keep_freed_memory
from ser.runtime.device import process_device
from ser.runtime.run_args import parse_bool as _bool
from ser.runtime.run_args import program_parser



def get_parser():
    p = program_parser("ser.bin.generate", "Generate synthetic mel segments (see the module docstring).")
    p.add_argument("--model-dir", required=True, help="a finished ser.bin.train_diffusion --outdir")
    p.add_argument("--num-per-combination", type=int, required=True, help="N segments per combination")
    p.add_argument("--sampling-steps", type=int, required=True, help="S strided reverse steps (1..T)")
    p.add_argument("--sampler", choices=SAMPLERS, default="ancestral",
                   help="ancestral: the learned variance (paper 2); ddim: DDIM steps with noise --eta")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM noise η in [0, 1] (0: deterministic)")
    p.add_argument("--guidance-weight", type=float, default=None,
                   help="autoguidance weight (default: the model's config; 1: unguided)")
    p.add_argument("--max-combinations", type=int, default=None,
                   help="use M combinations drawn with --seed instead of all of them")
    p.add_argument("--seed", type=int, default=1, help="seed of the noise and of the combination draw")
    p.add_argument("--out-data", required=True, help="output data dir")
    p.add_argument("--out-feats", required=True, help="dir of the output ark")
    p.add_argument("--ngpu", type=non_negative_int, default=None, help="0: CPU, 1: cuda:0 (default: 1 if CUDA is available)")
    p.add_argument("--num-threads", type=positive_int, default=None, help="torch CPU threads (default: torch's own)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="segments sampled at once")
    p.add_argument("--trim-padding", type=_bool, default=True,
                   help=f"cut trailing frames with every band < {PAD_THRESHOLD} (true|false)")
    return p


def choose_combinations(combos, max_combinations, seed):
    """All combinations, or `max_combinations` of them drawn reproducibly (kept in sorted order)."""
    if max_combinations is None or max_combinations >= len(combos):
        return list(combos)
    if max_combinations < 1:
        raise SerError(f"--max-combinations must be >= 1, got {max_combinations}")
    rng = np.random.default_rng(seed)
    keep = sorted(rng.choice(len(combos), size=max_combinations, replace=False).tolist())
    return [combos[i] for i in keep]


def trim_padding(mat, threshold=PAD_THRESHOLD):
    """(frames, dims) without its trailing frames whose every value is < threshold (>= 1 frame)."""
    loud = np.nonzero(mat.max(axis=1) >= threshold)[0]
    end = int(loud[-1]) + 1 if len(loud) else 1
    return mat[:end]


def utterance_ids(combos, n):
    """`<spk>-syn<k>-<emotion>` ids, k = combination index * n + j, zero-padded to one width."""
    width = max(5, len(str(len(combos) * n - 1)))
    return [[f"{spk}-syn{i * n + j:0{width}d}-{emo}" for j in range(n)] for i, (spk, emo, _) in enumerate(combos)]


def ark_name(out_data):
    """`<basename>_<8 hex digits of the absolute path>`: data dirs of the same basename (e.g. one
    per fold) may share an --out-feats dir without overwriting each other's ark."""
    path = os.path.abspath(out_data)
    return f"{os.path.basename(os.path.normpath(path))}_{hashlib.sha1(path.encode('utf-8')).hexdigest()[:8]}"


def write_feats(mats, out_feats, name, scp_path):
    """<out_feats>/<name>.ark then (last, atomically) scp_path pointing at it (absolute)."""
    os.makedirs(out_feats, exist_ok=True)
    ark = os.path.abspath(os.path.join(out_feats, f"{name}.ark"))
    tmp_ark, tmp_scp = ark + ".tmp", ark + ".scp.tmp"
    try:
        kaldiio.save_ark(tmp_ark, mats, scp=tmp_scp)
        lines = []
        with open(tmp_scp, encoding="utf-8") as f:
            for line in f:
                utt, loc = line.rstrip("\n").split(" ", 1)
                path, offset = loc.rsplit(":", 1)
                if path != tmp_ark:
                    raise SerError(f"{tmp_scp}: unexpected ark path in '{line.strip()}'")
                lines.append(f"{utt} {ark}:{offset}\n")
        os.replace(tmp_ark, ark)
        with atomic_open(scp_path, "w", encoding="utf-8") as f:
            f.writelines(lines)
    finally:
        for p in (tmp_ark, tmp_scp):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.num_per_combination < 1:
        raise SerError(f"--num-per-combination must be >= 1, got {args.num_per_combination}")
    if not 0.0 <= args.eta <= 1.0:
        raise SerError(f"--eta must be in [0, 1], got {args.eta}")
    if args.batch_size < 1:
        raise SerError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.guidance_weight is not None and args.guidance_weight <= 0:
        raise SerError(f"--guidance-weight must be > 0, got {args.guidance_weight}")
    if not os.path.exists(os.path.join(args.model_dir, "done")):
        raise SerError(f"{args.model_dir}: no 'done' (diffusion training has not finished)")
    train_list = os.path.join(args.model_dir, "train_utts.list")   # copied next to the samples at the end
    if not os.path.isfile(train_list):
        raise SerError(f"{train_list}: no such file (the model's training utterances; the samples' "
                       f"fold check needs them)")
    keep_freed_memory()
    device = process_device(args.ngpu)
    nets, meta = load_diffusion_model(args.model_dir, device)
    weight = guidance_weight(meta, args.guidance_weight)
    info = {"model_dir": os.path.abspath(args.model_dir), "sampling_steps": args.sampling_steps,
            "num_per_combination": args.num_per_combination, "sampler": args.sampler,
            "eta": args.eta if args.sampler == "ddim" else 0.0, "guidance_weight": weight,
            "max_combinations": args.max_combinations,
            "seed": args.seed, "batch_size": args.batch_size, "trim_padding": args.trim_padding}
    scp_path = os.path.join(args.out_data, "feats.scp")
    if made_with(args.out_data, info):
        print(f"{args.out_data}: already generated (same arguments)", file=sys.stderr)
        return 0
    with contextlib.suppress(FileNotFoundError):
        os.unlink(scp_path)          # a killed re-generation must not look complete

    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    T = meta["process"]["steps"]
    if not 1 <= args.sampling_steps <= T:
        raise SerError(f"--sampling-steps must be in [1, {T}] (T of the model), got {args.sampling_steps}")
    combos = choose_combinations(read_combinations(os.path.join(args.model_dir, "combinations.tsv")),
                                 args.max_combinations, args.seed)
    n = args.num_per_combination
    ids = utterance_ids(combos, n)
    conditions = [condition_text(text, emo, spk) for spk, emo, text in combos for _ in range(n)]
    print(f"generating {len(combos)} combinations x {n} = {len(conditions)} segments with "
          f"{args.sampling_steps} of {T} steps on {device}", file=sys.stderr)
    started = time.monotonic()
    samples = sample_segments(nets, meta, conditions, args.sampling_steps, args.batch_size, device, args.seed,
                              sampler=args.sampler, eta=args.eta, guidance_weight=weight)
    sampling_seconds = round(time.monotonic() - started, 1)

    mats, tables = {}, {n_: {} for n_ in ("utt2spk", "utt2emo", "text", "utt2cond", "utt2num_frames")}
    k = 0
    for (spk, emo, text), utts in zip(combos, ids):
        for utt in utts:
            mat = np.ascontiguousarray(samples[k].T)                 # (frames, n_mels)
            if args.trim_padding:
                mat = trim_padding(mat)
            mats[utt] = mat.astype(np.float32)
            tables["utt2spk"][utt], tables["utt2emo"][utt] = spk, emo
            tables["text"][utt], tables["utt2cond"][utt] = text, conditions[k]
            tables["utt2num_frames"][utt] = str(mat.shape[0])
            k += 1
    os.makedirs(args.out_data, exist_ok=True)
    for name, table in tables.items():
        write_kv(os.path.join(args.out_data, name), table)
    write_kv(os.path.join(args.out_data, "spk2utt"),
             {s: " ".join(u) for s, u in sorted_spk2utt(tables["utt2spk"]).items()})
    feat_conf = os.path.join(args.model_dir, "feat_conf.yaml")
    if os.path.isfile(feat_conf):
        with open(feat_conf, encoding="utf-8") as f:
            atomic_write_text(os.path.join(args.out_data, "conf.yaml"), f.read())
    with open(train_list, encoding="utf-8") as f:
        atomic_write_text(os.path.join(args.out_data, "model_train.list"), f.read())
    write_info(args.out_data, info, sampling_seconds)
    order = {u: mats[u] for u in sorted(mats, key=lambda u: u.encode("utf-8"))}
    write_feats(order, args.out_feats, ark_name(args.out_data), scp_path)
    print(f"{args.out_data}: {len(mats)} synthetic utterances of {len(set(tables['utt2spk'].values()))} speakers",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
