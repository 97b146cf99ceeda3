"""The main() of the job-runner programs utils/run.py and utils/slurm.py: usage, parsing, running
the job array, and the exit status (Kaldi run.pl/slurm.pl's convention)."""
import sys

from ser.errors import SerError
from ser.jobs.cli import UsageError, failure_report
from ser.jobs.signals import Terminated


def job_runner_main(argv, prog, usage, parse, run, job_args=None, killed="", action="start"):
    """Run the jobs of the command line `argv` (default sys.argv[1:]); returns the exit status.

    parse(argv) -> args (UsageError: usage and a one-line error, status 1); run(args) -> the
    [(job, status, log)] results; job_args(args) -> the cli.JobArgs in args (default: args
    itself). On SIGTERM/SIGHUP the status is 128 + signal, the message naming the logs after
    `killed`; an OSError becomes SerError "cannot <action> jobs: ..."; failed jobs are reported
    on stderr (status 1)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage.format(prog=prog), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 1
    try:
        args = parse(argv)
    except UsageError as e:
        print(usage.format(prog=prog), file=sys.stderr)
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    job = args if job_args is None else job_args(args)
    try:
        results = run(args)
    except Terminated as e:
        print(f"{prog}: killed by signal {e.signum}; {killed}logs in {job.log_glob()}",
              file=sys.stderr)
        return 128 + e.signum
    except OSError as e:
        raise SerError(f"cannot {action} jobs: {e}")
    lines = failure_report(job, results, prog)
    for line in lines:
        print(line, file=sys.stderr)
    return 1 if lines else 0
