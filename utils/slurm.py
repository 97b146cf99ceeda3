#!/usr/bin/env python3
"""Run a command as a Slurm job array, with Kaldi slurm.pl's calling convention (as run.py's).

    slurm.py [--config conf/slurm.conf] [--pick all|failed] [--poll-interval S]
             [--max-jobs-run N] [--num-threads N] [--mem SIZE] [--gpu N] [JOB=1:N] <log> <cmd> ...

See ser/jobs/slurm.py for the config format, the batch script and how completion is detected.
"""
import os
import sys

try:
    import ser  # noqa: F401  (installed in the venv that path.sh activates)
except ImportError:  # run from a checkout without the venv: use the package next to utils/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from ser.errors import SerError, run_main  # noqa: E402
from ser.jobs.cli import UsageError, failure_report  # noqa: E402
from ser.jobs.slurm import USAGE, Terminated, parse_slurm_args, run_array  # noqa: E402

PROG = "slurm.py"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(prog=PROG), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 1
    try:
        args = parse_slurm_args(argv)
    except UsageError as e:
        print(USAGE.format(prog=PROG), file=sys.stderr)
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    try:
        results = run_array(args, PROG, log=lambda line: print(line, file=sys.stderr))
    except Terminated as e:
        print(f"{PROG}: killed by signal {e.signum}; logs in {args.job.log_glob()}",
              file=sys.stderr)
        return 128 + e.signum
    except OSError as e:
        raise SerError(f"cannot submit jobs: {e}")
    lines = failure_report(args.job, results, PROG)
    for line in lines:
        print(line, file=sys.stderr)
    return 1 if lines else 0


if __name__ == "__main__":
    run_main(main)
