"""Train the text-conditioned diffusion model of one fold on its training mel segments.

    python -m ser.bin.train_diffusion --config conf/diffusion.yaml --feats-dir data/all_mel \\
        --fold-dir data/all_folds/1 [--text-dir data/all] --seed 1 [--ngpu 0] [--num-threads 1] \\
        --outdir exp/all/diffusion_<hash>/fold.1

Only the fold's train.list utterances are used (the classifier's fold checks refuse a train.list
with a valid/test speaker); each 80 x 256 segment (padded with -1 = silence) is conditioned on
"<sentence> | emotion: <emo> | speaker: <spk>" of its utterance, with sentence, emotion and
speaker from --text-dir (text, utt2emo, utt2spk; default: --feats-dir). The sentencepiece
conditioner (the CPU default) gets a model trained on the fold's transcripts and condition
strings, stored as <outdir>/spm.model; the BERT conditioner loads `conditioner.pretrained`.

Writes into --outdir: config.yaml (resolved config), train_utts.list (the utterances used),
combinations.tsv (speaker, emotion, sentence of the training utterances: what generate.py
conditions on), feat_conf.yaml (the mel feature config), spm.model/.vocab, train.log,
history.tsv, checkpoints/last.pt, model.pt (EMA weights), diagnostics/ (error by t on the
fold's validation utterances when --feats-dir has them, else on training segments; sample
statistics and a mel grid: ser/diffusion/diagnostics.py) and finally `done`. Re-running:
- with `done` and the same resolved config: prints "already trained" and exits 0;
- without `done`: resumes from checkpoints/last.pt (the result equals an uninterrupted run);
- with a different resolved config: one-line error (use another --outdir).

Several GPUs (or CPU processes): start it through
    utils/launch_train.sh --module ser.bin.train_diffusion --ngpu N -- <options without --ngpu>
which runs torchrun; each of the N processes trains on cuda:LOCAL_RANK (gloo on CPU with --ngpu 0
and --nproc N) with its share of every global batch (batch_size stays the global batch and must
divide by N); rank 0 alone writes (ser/diffusion/trainer.py, ser/runtime/distributed.py).
"""
import os
import shutil

import torch

from ser.data.atomic import atomic_write_text
from ser.diffusion import config as DC
from ser.diffusion.conditioning import train_sentencepiece
from ser.diffusion.data import load_diagnostic_segments, load_training_segments, write_combinations
from ser.diffusion.model_io import build_nets
from ser.diffusion.trainer import DiffusionTrainer
from ser.errors import run_main
from ser.runtime import distributed
from ser.runtime.config import canonical, dump, read_yaml
from ser.runtime.precision import check_precision
from ser.runtime.run_args import (add_fold_input_args, add_print_config_args, add_run_args, add_set_arg,
                                  program_parser, run_training, seed_run)
from ser.training.dataset import check_trained_features, read_feat_conf

SPM_PREFIX = "spm"


def get_parser():
    p = program_parser("ser.bin.train_diffusion", "Train the diffusion model of one fold (see the module docstring).")
    add_fold_input_args(p, "diffusion config (YAML, see ser/diffusion/config.py)",
                        "mel data dir: feats.scp, utt2spk [, conf.yaml]")
    p.add_argument("--text-dir", default=None, help="data dir with text, utt2emo, utt2spk (default: --feats-dir)")
    add_run_args(p, "experiment dir (required unless --print-config[-hash])")
    p.add_argument("--max-steps", type=int, default=None, help="override max_steps (part of the resolved config)")
    add_set_arg(p)
    add_print_config_args(p)
    return p


def resolve_config(args):
    """DEFAULTS <- --config <- --set <- --max-steps, plus the data arguments and the seed."""
    cfg = DC.apply_overrides(DC.load_config(args.config), args.set)
    if args.max_steps is not None:
        cfg = DC.merge(cfg, {"max_steps": args.max_steps}, "--max-steps")
    cfg["data"] = {"feats_dir": args.feats_dir, "fold_dir": args.fold_dir,
                   "text_dir": args.text_dir or args.feats_dir}
    cfg["seed"] = args.seed
    DC.check_config(cfg)
    return canonical(cfg)


def prepare_outdir(outdir, resolved, data):
    """Write the run's description files (idempotent: the same content on a resumed run)."""
    os.makedirs(outdir, exist_ok=True)
    atomic_write_text(os.path.join(outdir, "config.yaml"), dump(resolved))
    atomic_write_text(os.path.join(outdir, "train_utts.list"), "".join(u + "\n" for u in data.utts))
    write_combinations(os.path.join(outdir, "combinations.tsv"), data.combinations())
    feat_conf = os.path.join(resolved["data"]["feats_dir"], "conf.yaml")
    if os.path.isfile(feat_conf):
        shutil.copyfile(feat_conf, os.path.join(outdir, "feat_conf.yaml"))


def sentencepiece_model(outdir, resolved, data, train=True):
    """<outdir>/spm.model, trained on the fold's transcripts + condition strings if absent
    (unless `train` is false: the ranks other than 0 only name it)."""
    path = os.path.join(outdir, SPM_PREFIX + ".model")
    if train and not os.path.isfile(path):
        texts = sorted({data.text[u] for u in data.utts if data.text[u]}) + sorted(set(data.conditions))
        spm = resolved["spm"]
        train_sentencepiece(texts, os.path.join(outdir, SPM_PREFIX), vocab_size=spm["vocab_size"],
                            model_type=spm["model_type"])
    return path


def main(argv=None, on_checkpoint=None):
    args = get_parser().parse_args(argv)
    resolved = resolve_config(args)
    return run_training(args, resolved, DC.config_hash, lambda env: train(args, resolved, env, on_checkpoint))


def train(args, resolved, env, on_checkpoint=None):
    """Train into args.outdir on this process's device (env: its DistEnv, see the module docstring)."""
    device = env.device
    check_precision(resolved["precision"], device)   # fp16 on a CPU: refused before anything is written
    distributed.per_process_batch(resolved["batch_size"], env.world_size)   # before anything is written
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    seg = resolved["segment"]
    data = load_training_segments(args.feats_dir, args.fold_dir, resolved["data"]["text_dir"],
                                  seg["length"], seg["shift"], seg["pad_value"])
    train_set = set(data.utts)
    assert all(u in train_set for u in data.segment_utts), "a segment of a non-training utterance"
    started = os.path.join(args.outdir, "feat_conf.yaml")
    if os.path.isfile(started):   # a resumed run continues only on the features it started on
        check_trained_features(args.outdir, read_yaml(started), args.feats_dir)
    main_rank = distributed.is_main()
    if main_rank:   # rank 0 alone writes; the others wait, then read spm.model
        prepare_outdir(args.outdir, resolved, data)

    cond_conf = DC.conditioner_conf(resolved)
    if cond_conf["type"] == "sentencepiece":
        cond_conf["spm_model"] = sentencepiece_model(args.outdir, resolved, data, train=main_rank)
    distributed.barrier()
    seed_run(args.seed, device)
    nets = build_nets(DC.denoiser_conf(resolved, data.n_mels), cond_conf)
    saved_cond = {k: v for k, v in cond_conf.items() if k != "proj_dim"}
    if saved_cond["type"] == "sentencepiece":
        saved_cond["spm_model"] = os.path.basename(saved_cond["spm_model"])   # relative to the model dir
    meta = {"denoiser": dict(nets["denoiser"].conf), "conditioner": saved_cond,
            "process": dict(resolved["process"]), "segment": dict(seg), "n_mels": data.n_mels,
            "feat_conf": read_feat_conf(args.feats_dir), "precision": resolved["precision"],
            "config": resolved, "config_hash": DC.config_hash(resolved)}
    n_params = sum(p.numel() for p in nets.parameters())
    notes = [f"config hash {meta['config_hash']}, device {device}, precision "
             f"{resolved['precision']}, {n_params} trainable parameters",
             f"train: {len(data.utts)} utterances of {args.fold_dir}/train.list -> {len(data.segment_utts)} "
             f"segments of {data.n_mels} x {seg['length']}; {len(data.combinations())} "
             f"(speaker, emotion, sentence) combinations"]
    diag = None
    if main_rank:
        diag = load_diagnostic_segments(args.feats_dir, args.fold_dir, resolved["data"]["text_dir"], data,
                                        seg["length"], seg["shift"], seg["pad_value"])
        notes.append(f"diagnostics on {len(diag.segments)} {diag.source} segments"
                     + ("" if diag.source == "valid" else " (the feats dir has no valid.list utterance)"))
    DiffusionTrainer(nets, data, resolved, args.outdir, device, args.seed, meta,
                     on_checkpoint=on_checkpoint, notes=notes, diagnostics_data=diag).run()


if __name__ == "__main__":
    run_main(main)
