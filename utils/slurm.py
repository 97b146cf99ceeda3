#!/usr/bin/env python3
"""Run a command as a Slurm job array, with Kaldi slurm.pl's calling convention (as run.py's).

    slurm.py [--config conf/slurm.conf] [--pick all|failed] [--poll-interval S]
             [--max-jobs-run N] [--num-threads N] [--mem SIZE] [--gpu N] [JOB=1:N] <log> <cmd> ...

See ser/jobs/slurm.py for how completion is detected, ser/jobs/slurm_config.py for the config
format and ser/jobs/slurm_batch.py for the batch script.
"""
import os
import sys

try:
    import ser  # noqa: F401  (installed in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.errors import run_main  # noqa: E402
from ser.jobs.program import job_runner_main  # noqa: E402
from ser.jobs.slurm import USAGE, parse_slurm_args, run_array  # noqa: E402

PROG = "slurm.py"


def _run(args):
    return run_array(args, PROG, log=lambda line: print(line, file=sys.stderr))


def main(argv=None):
    return job_runner_main(argv, PROG, USAGE, parse_slurm_args, _run, job_args=lambda a: a.job,
                           action="submit")


if __name__ == "__main__":
    run_main(main)
