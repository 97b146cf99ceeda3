"""Helpers of the data-parallel tests (test_distributed.py, test_diffusion_distributed.py): start
a training program through utils/launch_train.sh (torchrun, CPU processes, gloo) in the
background, collect it, and read what its run wrote."""
import os
import subprocess
import sys

from ser.runtime.checkpoint import load_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, "utils", "launch_train.sh")
TORCHRUN_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launch_env(drop=(), **extra):
    """This environment without torchrun's variables (nor the names in `drop`), with the repo on
    PYTHONPATH, this python, one OpenMP thread, and `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS + tuple(drop)}
    env.update(PYTHONPATH=REPO, PYTHON=sys.executable, OMP_NUM_THREADS="1",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]))
    env.update(extra)
    return env


def start_launch(args, outdir, module=None, nproc=2, drop=(), **env):
    """utils/launch_train.sh [--module M] --ngpu 0 --nproc N -- <args> --outdir <outdir>, started
    in the background (stdout/stderr captured)."""
    cmd = ["bash", LAUNCH] + (["--module", module] if module else []) + ["--ngpu", "0", "--nproc", str(nproc), "--"]
    return subprocess.Popen(cmd + args + ["--outdir", str(outdir)], cwd=REPO, env=launch_env(drop, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    """(exit status, stdout + stderr) of a started run."""
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out + err


def last_checkpoint(outdir):
    """The run's checkpoints/last.pt."""
    return load_checkpoint(os.path.join(outdir, "checkpoints", "last.pt"))


def history_rows(outdir):
    """history.tsv rows as lists of fields, without the last (timing) column."""
    lines = open(os.path.join(outdir, "history.tsv")).read().splitlines()
    return [line.split("\t")[:-1] for line in lines]
