"""Command-line pieces shared by the training programs (ser.bin.train, ser.bin.train_diffusion,
ser.bin.generate, ser.bin.diffusion_report): the parser, common options, the config requests
answered before training, the output-dir check, the seeding of a run and the steps around
training (`run_training`)."""
import argparse
import os
import sys

import torch

from ser.data.cli import non_negative_int, positive_int
from ser.errors import SerError
from ser.runtime import config as C
from ser.runtime import distributed
from ser.runtime.checkpoint import CHECKPOINT, seed_everything
from ser.runtime.run_dir import DONE


def program_parser(prog, description):
    """The ArgumentParser of program `prog`; its --help shows every option's default."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_fold_input_args(p, config_help, feats_help):
    """The inputs of a training program: --config, --feats-dir and the fold's --fold-dir."""
    p.add_argument("--config", required=True, help=config_help)
    p.add_argument("--feats-dir", required=True, help=feats_help)
    p.add_argument("--fold-dir", required=True, help="dir with train.list, valid.list, test.list [, info.yaml]")


def parse_bool(text):
    """argparse type of true|false options (also yes/no, 1/0)."""
    low = text.lower()
    if low in ("true", "yes", "1"):
        return True
    if low in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_run_args(p, outdir_help):
    """--seed, --outdir, --ngpu, --num-threads."""
    p.add_argument("--seed", type=int, default=1, help="seed of every random generator")
    p.add_argument("--outdir", help=outdir_help)
    p.add_argument("--ngpu", type=non_negative_int, default=None,
                   help="0: CPU, 1: cuda:0 (default: 1 if CUDA is available); under torchrun "
                        "(utils/launch_train.sh --ngpu N) N = GPUs per node, one per process")
    p.add_argument("--num-threads", type=positive_int, default=None, help="torch CPU threads (default: torch's own)")


def add_set_arg(p):
    """--set KEY.SUB=VALUE (repeatable)."""
    p.add_argument("--set", action="append", default=[], metavar="KEY.SUB=VALUE",
                   help="override any config key; VALUE is parsed as YAML (repeatable)")


def add_print_config_args(p):
    """--print-config-hash, --print-config."""
    p.add_argument("--print-config-hash", action="store_true",
                   help="print the hash of the resolved config (without seed and fold) and exit")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def check_outdir(outdir, resolved, config_path):
    """'done' if finished with this config, 'resume'/'new' otherwise; SerError if the config differs."""
    stored = os.path.join(outdir, "config.yaml")
    if os.path.exists(stored):
        old = C.load_stored(stored)
        diffs = C.config_diff(old, resolved)
        if diffs:
            key, a, b = diffs[0]
            more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
            raise SerError(f"{stored} differs from the config resolved from {config_path} and the command line: "
                           f"{key} is {a!r} there but {b!r} now{more}; use another --outdir")
    if os.path.exists(os.path.join(outdir, DONE)):
        return "done"
    return "resume" if os.path.exists(os.path.join(outdir, CHECKPOINT)) else "new"


def answer_before_training(args, resolved, config_hash):
    """The exit status when there is nothing to train: --print-config-hash (print config_hash(resolved))
    / --print-config (print and 0), or a finished --outdir with the same config (0, "already
    trained" on stderr); None when training should go on. SerError without --outdir or with a
    different stored config."""
    if args.print_config_hash:
        print(config_hash(resolved))
        return 0
    if args.print_config:
        sys.stdout.write(C.dump(resolved))
        return 0
    if not args.outdir:
        raise SerError("--outdir is required")
    if check_outdir(args.outdir, resolved, args.config) == "done":
        print(f"{args.outdir}: already trained (done present, same config)", file=sys.stderr)
        return 0
    return None


def seed_run(seed, device):
    """Seed every global generator; deterministic cuDNN on a GPU."""
    seed_everything(seed)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def run_training(args, resolved, config_hash, train):
    """What a training program does with its parsed `args` and resolved config: answer the
    requests that need no training (answer_before_training), else join the process group
    (torchrun) and call train(env) with this process's DistEnv on every rank, then leave it.
    Returns the exit status.

    `train`'s frame holds the trainer and its DDP wrapper; it is gone when the group is left
    (distributed.cleanup)."""
    status = answer_before_training(args, resolved, config_hash)
    if status is not None:
        return status
    env = distributed.setup(args.ngpu)   # cuda:LOCAL_RANK / cpu under torchrun
    train(env)
    distributed.cleanup()
    return 0
