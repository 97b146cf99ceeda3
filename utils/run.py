#!/usr/bin/env python3
"""Run a command as a job array on this machine, with Kaldi run.pl's calling convention.

    run.py [--max-jobs-run N] [--num-threads N] [--mem SIZE] [--gpu N] [JOB=1:N] <log> <cmd> ...

See ser/jobs/cli.py for the convention and ser/jobs/local.py for the execution.
"""
import os
import sys

try:
    import ser  # noqa: F401  (installed in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.errors import run_main  # noqa: E402
from ser.jobs.cli import USAGE, parse_job_args  # noqa: E402
from ser.jobs.local import run_jobs  # noqa: E402
from ser.jobs.program import job_runner_main  # noqa: E402

PROG = "run.py"


def _run(args):
    return run_jobs(args.command, args.log_pattern, args.start, args.end,
                    max_jobs=args.max_jobs_run,
                    num_threads=args.num_threads,
                    job_var=args.job_var, names=args.names)


def main(argv=None):
    return job_runner_main(argv, PROG, USAGE, parse_job_args, _run, killed="jobs killed, ",
                           action="start")


if __name__ == "__main__":
    run_main(main)
