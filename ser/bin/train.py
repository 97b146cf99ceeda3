"""Train an SER model on one fold (stage 3 of the recipes).

    python -m ser.bin.train --config conf/train.yaml --feats-dir data/all_spec \\
        --fold-dir data/folds/loso/1 --classes data/folds/loso/classes.txt \\
        [--aug-dirs "data/all_spec_sp0.9 data/all_spec_sp1.1"] --seed 1 --ngpu 0 \\
        --outdir exp/<tag>/fold.1/seed1

Synthetic data of the fold (ser.bin.generate): --synthetic-dirs DIR [--train-source both|synthetic]
(paper 2: real + synthetic, or synthetic only; validation and test stay real). A synthetic dir is
refused unless every utterance is conditioned on a training speaker of the fold and its diffusion
model was trained on the fold's train.list only (ser/training/dataset.py).

Writes config.yaml (the resolved config), train.log, history.tsv, checkpoints/last.pt,
model.pt (best validation UAR) and finally `done` into --outdir. Re-running:
- with `done` and the same resolved config: prints "already trained" and exits 0;
- without `done`: resumes from checkpoints/last.pt;
- with a different resolved config: error (use a new --outdir; the recipe's experiment tag
  holds `--print-config-hash`, which differs when the config does).

Refit (ser.training.refit): --refit-from SRC, with the arguments of finished run SRC, trains the
same model again on the fold's training + validation speakers for the epochs and learning rates
SRC's validation chose; model.pt is the last epoch's. Its config adds data.train_on: train+valid
(a config hash of its own) and data.refit_from: SRC.

Fine-tuning: the config's `init` section starts from the weights of a trained model, e.g. one of
another corpus, all but the excluded layers (ser.training.init_model); its file's sha256 is part
of the resolved config.

Several GPUs (or CPU processes): start it through utils/launch_train.sh, which runs torchrun;
each of the WORLD_SIZE processes then trains on cuda:LOCAL_RANK (gloo on CPU with --ngpu 0) with
its share of every global batch (batch_size stays the global batch); rank 0 alone writes
(ser/runtime/distributed.py, ser/training/trainer.py). --sync-batchnorm true computes batch-norm
statistics over the global batch.
"""
import os

import torch

from ser.augment import settings as augmentation_settings
from ser.data.atomic import atomic_write_text
from ser.data.cli import positive_int
from ser.data.fold_dir import read_fold_lists
from ser.errors import SerError, run_main
from ser.runtime import distributed
from ser.runtime.config import canonical, dump, parse_override
from ser.runtime.run_args import (add_fold_input_args, add_print_config_args, add_run_args, add_set_arg,
                                  program_parser, run_training, seed_run)
from ser.runtime.run_args import parse_bool as _bool
from ser.runtime.torch_files import MODEL_FILE
from ser.training import config as C
from ser.training import init_model, refit
from ser.training.dataset import (AUG_POLICIES, TRAIN_SOURCES, check_trained_features, load_fold, prepare,
                                  resolve_train_source)
from ser.training.model_io import read_model_file
from ser.training.trainer import Trainer


def get_parser():
    p = program_parser("ser.bin.train", "Train an SER model on one fold (see the module docstring).")
    add_fold_input_args(p, "training config (YAML)", "data dir with feats.scp, utt2spk, utt2emo [, conf.yaml]")
    p.add_argument("--classes", required=True, help="classes.txt: one label per line, in output order")
    p.add_argument("--aug-dirs", action="append", default=[],
                   help="white-space separated data dirs of augmented copies with utt2uniq (repeatable)")
    p.add_argument("--aug-policy", choices=AUG_POLICIES, default="refuse",
                   help="augmented copies whose source is not in train.list: refuse (error) or select "
                        "(skip them, for dirs that augment the whole corpus)")
    p.add_argument("--synthetic-dirs", action="append", default=[],
                   help="white-space separated data dirs of synthetic utterances of this fold (repeatable)")
    p.add_argument("--train-source", choices=TRAIN_SOURCES, default=None,
                   help="train on real data, synthetic data only, or both "
                        "(default: both with --synthetic-dirs, else real)")
    p.add_argument("--augmentation", default=None,
                   help="the recipe's augmentation setting these options make (ser.augment.settings), recorded "
                        "in the config and checked against them (default: the setting they match, or custom)")
    p.add_argument("--refit-from", default=None, metavar="RUN_DIR",
                   help="a finished run of this config, fold and seed: train on its training + validation "
                        "speakers for the epochs and learning rates its validation chose (ser.training.refit)")
    add_run_args(p, "experiment dir (required unless --print-config-hash)")
    g = p.add_argument_group("config overrides (part of the resolved config)")
    g.add_argument("--model", help="model name (ser.models registry)")
    g.add_argument("--mixup", type=_bool, help="true|false")
    g.add_argument("--mixup-alpha", type=float, help="Beta(alpha, alpha) of the mixup weight")
    g.add_argument("--max-epochs", type=positive_int)
    g.add_argument("--sync-batchnorm", type=_bool, default=False,
                   help="with several processes: batch-norm statistics over the global batch (true|false)")
    add_set_arg(g)
    add_print_config_args(p)
    return p


def _mixup_source(args):
    """Where mixup.enabled got its value: the last --set giving it, else the config file."""
    for text in reversed(args.set):
        mixup = parse_override(text).get("mixup")
        if isinstance(mixup, dict) and "enabled" in mixup:
            return f"--set {text}"
    return args.config


def resolve_config(args):
    """DEFAULTS <- --config <- --set <- named overrides, plus the data arguments and seed."""
    cfg = C.apply_overrides(C.load_config(args.config), args.set)
    if args.augmentation is not None and args.mixup is False and cfg["mixup"]["enabled"]:
        # the recipe's setting decides mixup: a config enabling it would be overridden unseen
        raise SerError(f"{_mixup_source(args)}: mixup.enabled is true, but the augmentation setting "
                       f"'{args.augmentation}' has none: the setting chooses mixup (run.sh --augs "
                       f"mixup or sp+mixup), so set mixup.enabled: false")
    named = {}
    if args.model is not None:
        named["model"] = args.model
    if args.max_epochs is not None:
        named["max_epochs"] = args.max_epochs
    if args.mixup is not None or args.mixup_alpha is not None:
        named["mixup"] = {}
        if args.mixup is not None:
            named["mixup"]["enabled"] = args.mixup
        if args.mixup_alpha is not None:
            named["mixup"]["alpha"] = args.mixup_alpha
    cfg = C.without_options_off(C.merge(cfg, named, "command line"))
    if "init" in cfg:
        cfg["init"] = init_model.resolve(cfg["init"])
    if args.sync_batchnorm:  # only then, so that other configs (and their hashes) stay as they were
        cfg["sync_batchnorm"] = True
    aug_dirs = [d for text in args.aug_dirs for d in text.split()]
    cfg["data"] = {"feats_dir": args.feats_dir, "fold_dir": args.fold_dir, "classes": args.classes,
                   "aug_dirs": aug_dirs, "aug_policy": args.aug_policy}
    synthetic_dirs = [d for text in args.synthetic_dirs for d in text.split()]
    if synthetic_dirs or args.train_source not in (None, "real"):
        # only then: configs of runs without synthetic data (and their hashes) stay as they were
        cfg["data"]["synthetic_dirs"] = synthetic_dirs
        cfg["data"]["train_source"] = resolve_train_source(args.train_source, synthetic_dirs)
    if args.refit_from is not None:
        cfg["data"]["train_on"] = refit.TRAIN_ON
        cfg["data"]["refit_from"] = args.refit_from
    cfg["augmentation"] = augmentation_settings.of_options(
        cfg["mixup"]["enabled"], aug_dirs, cfg["data"].get("train_source"), args.augmentation)
    cfg["seed"] = args.seed
    return canonical(cfg)


def main(argv=None):
    args = get_parser().parse_args(argv)
    resolved = resolve_config(args)
    return run_training(args, resolved, C.config_hash, lambda env: train(args, resolved, env.device))


def train(args, resolved, device):
    """Train into args.outdir on `device` (under torchrun: this rank's share, see the module docstring)."""
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    data = resolved["data"]
    plan = None
    if "refit_from" in data:
        plan = refit.refit_plan(data["refit_from"])
        refit.check_source(data["refit_from"], resolved, C.config_hash)
    fold = load_fold(data["feats_dir"], data["fold_dir"], data["classes"], data["aug_dirs"], data["aug_policy"],
                     data.get("synthetic_dirs", ()), data.get("train_source"), refit=plan is not None)
    seg = resolved["segment"]
    utt_mvn = resolved.get("utterance_mvn", C.DEFAULTS["utterance_mvn"])
    prepared = prepare(fold, seg["length"], seg["shift"], utt_mvn)

    from ser.models import build_model  # the model zoo is imported only when training

    model_path = os.path.join(args.outdir, MODEL_FILE)
    if os.path.exists(model_path):   # a resumed run continues only on the features it started on
        check_trained_features(model_path, read_model_file(model_path)["meta"]["feat_conf"], data["feats_dir"])
    seed_run(args.seed, device)
    model = build_model(resolved["model"], len(fold.classes), fold.feat_dim, **resolved["model_conf"])
    meta = {"model_name": resolved["model"], "model_conf": resolved["model_conf"],
            "num_classes": len(fold.classes), "classes": fold.classes, "feat_dim": fold.feat_dim,
            "segment": dict(seg), "utterance_mvn": dict(utt_mvn), "feat_conf": fold.feat_conf,
            "train_config": resolved,
            "config_hash": C.config_hash(resolved)}
    n_aug = sum(1 for u, s in fold.train_source.items() if u != s)
    n_syn = len(fold.synthetic)
    notes = [f"config hash {meta['config_hash']}, device {device}, model {resolved['model']} "
             f"({sum(p.numel() for p in model.parameters())} parameters)",
             f"train: {len(fold.train) - n_aug - n_syn} utterances + {n_aug} augmented copies"
             f"{f' + {n_syn} synthetic' if n_syn else ''} = "
             f"{len(prepared.train_set)} segments; valid: {len(fold.valid)} utterances; "
             f"classes: {' '.join(fold.classes)}"]
    if "init" in resolved:
        test_utts = read_fold_lists(data["fold_dir"])["test"]
        notes.append(init_model.initialise(model, resolved["init"], fold.classes, fold.feat_conf, test_utts))
    # config.yaml marks the dir as this config's only once the model is built: a typo in the model
    # or its init leaves nothing that a corrected rerun would be refused against
    os.makedirs(args.outdir, exist_ok=True)
    if distributed.is_main():
        atomic_write_text(os.path.join(args.outdir, "config.yaml"), dump(resolved))
    if plan is not None:
        notes.append(f"refit of {plan.source}: train + valid speakers, {plan.epochs} epochs (its best, valid_uar "
                     f"{plan.valid_uar:.4f}) at its learning rates {' '.join(f'{lr:.3g}' for lr in sorted(set(plan.lrs), reverse=True))}")
    Trainer(model, prepared, resolved, args.outdir, device, args.seed, meta, notes=notes,
            lr_schedule=plan.lrs if plan is not None else None).run()


if __name__ == "__main__":
    run_main(main)
