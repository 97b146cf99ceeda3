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

from ser.errors import SerError, run_main  # noqa: E402
from ser.jobs.cli import USAGE, UsageError, failure_report, parse_job_args  # noqa: E402
from ser.jobs.local import Terminated, run_jobs  # noqa: E402

PROG = "run.py"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(prog=PROG), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 1
    try:
        args = parse_job_args(argv)
    except UsageError as e:
        print(USAGE.format(prog=PROG), file=sys.stderr)
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    try:
        results = run_jobs(args.command, args.log_pattern, args.start, args.end,
                           max_jobs=args.max_jobs_run,
                           num_threads=args.num_threads,
                           job_var=args.job_var)
    except Terminated as e:
        print(f"{PROG}: killed by signal {e.signum}; jobs killed, logs in {args.log_glob()}",
              file=sys.stderr)
        return 128 + e.signum
    except OSError as e:
        raise SerError(f"cannot start jobs: {e}")
    lines = failure_report(args, results, PROG)
    for line in lines:
        print(line, file=sys.stderr)
    return 1 if lines else 0


if __name__ == "__main__":
    run_main(main)
