"""Slurm job back-end: run the jobs of a job array as one `sbatch --array` job, as Kaldi slurm.pl.

    slurm.py [--config conf/slurm.conf] [--pick all|failed] [--poll-interval S] [run.py options]
             [JOB=1:N] <log-file> <command> [<args>...]

The calling convention is run.py's (ser/jobs/cli.py). The generic options --mem, --num-threads and
--gpu (and any other option the config describes, e.g. --time) are mapped to sbatch options by a
config file in Kaldi's slurm.pl format (ser/jobs/slurm_config.py); --max-jobs-run becomes the
array's `%N` throttle. One batch script, `<log dir>/q/<name>.sh` (ser/jobs/slurm_batch.py), runs
task $SLURM_ARRAY_TASK_ID with JOB replaced by the task index (for a list JOB=a,b,c, tasks 1..N
stand for its names) and frames its log exactly as the
local runner does (`# <command>`, `# Started at`, output, `# Accounting: ...`, `# Ended (code N)
at ...`). slurm.py then waits until every task's log has its "Ended" line, or Slurm (squeue, then
sacct; ser/jobs/slurm_commands.py) says the job is gone; a task without an "Ended" line gets the
exit status sacct reports.

`--pick failed` re-runs only the tasks whose log does not end with `# Ended (code 0)`.
"""
import contextlib
import dataclasses
import os
import re
import shlex
import time
from typing import Dict, Optional

from ser.data.atomic import atomic_write_text
from ser.errors import SerError
from ser.jobs.cli import USAGE as _RUN_USAGE, JobArgs, UsageError, parse_job_args
from ser.jobs.signals import Terminated, signals_raise
from ser.jobs.slurm_batch import batch_script, ended_status, queue_paths
from ser.jobs.slurm_commands import (DONE_STATES, array_spec, parse_job_id, run_command, sacct_status,
                                     sacct_tasks, scancel, squeue_active)
from ser.jobs.slurm_config import read_config

USAGE = _RUN_USAGE + """\
Slurm options (slurm.py):
  --config FILE        maps the options above to sbatch options, Kaldi slurm.pl format
                       (default: the built-in one, as egs/TEMPLATE/conf/slurm.conf); an option the
                       config describes, e.g. `option time=* --time $0`, is accepted as --time
  --pick all|failed    failed: re-run only the jobs whose log does not end with
                       '# Ended (code 0)' (default: all)
  --poll-interval S    seconds between looks at the logs and squeue/sacct (default: 5)
All jobs are submitted as one job array; the batch script is <log dir>/q/<name>.sh and Slurm's
own output of task N goes to <log dir>/q/<name>.N.log.
"""

_GENERIC_OPTIONS = ("max-jobs-run", "num-threads", "mem", "gpu")  # parsed by parse_job_args
_DEFAULT_POLL_SECONDS = 5.0
_SETTLE_POLLS = 6  # polls that Slurm must show the job gone before a missing "Ended" line counts


@dataclasses.dataclass
class SlurmArgs:
    """A parsed slurm.py command line: the run.py part plus the Slurm specifics."""
    job: JobArgs
    config: Optional[str] = None
    pick: str = "all"
    poll_interval: float = _DEFAULT_POLL_SECONDS
    given: Dict[str, str] = dataclasses.field(default_factory=dict)  # config name -> value


def parse_slurm_args(argv):
    """Parse `slurm.py [options] [JOB=1:N] <log> <command>...` (without the program name).

    The run.py options go to parse_job_args; --config, --pick and --poll-interval are slurm.py's;
    any other leading `--name value` is kept for the config to map (checked when it is read).
    Raises UsageError.
    """
    argv = list(argv)
    generic, own, extra, seen = [], {}, {}, []
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        arg = argv[i]
        if "=" in arg:
            name, value = arg[2:].split("=", 1)
            words, i = [arg], i + 1
        else:
            if i + 1 >= len(argv):
                raise UsageError(f"option {arg} needs a value")
            name, value = arg[2:], argv[i + 1]
            words, i = [arg, value], i + 2
        key = name.replace("_", "-")
        if not re.match(r"^[A-Za-z][\w-]*$", key):
            raise UsageError(f"bad option '{arg}'")
        if key in _GENERIC_OPTIONS:
            generic += words
            seen.append(key)
        elif key in ("config", "pick", "poll-interval"):
            own[key] = value
        else:
            extra[key.replace("-", "_")] = value
    job = parse_job_args(generic + argv[i:])

    args = SlurmArgs(job=job, config=own.get("config"))
    if "pick" in own:
        if own["pick"] not in ("all", "failed"):
            raise UsageError(f"option --pick needs 'all' or 'failed', got '{own['pick']}'")
        args.pick = own["pick"]
    if "poll-interval" in own:
        try:
            args.poll_interval = float(own["poll-interval"])
        except ValueError:
            args.poll_interval = -1.0
        if not args.poll_interval > 0:
            raise UsageError(f"option --poll-interval needs seconds > 0, "
                             f"got '{own['poll-interval']}'")
    if "mem" in seen:
        args.given["mem"] = job.mem
    if "num-threads" in seen:
        args.given["num_threads"] = str(job.num_threads)
    if "gpu" in seen:
        args.given["gpu"] = str(job.gpu)
    args.given.update(extra)
    return args


def tasks_to_run(job, pick="all"):
    """The array task indices to submit: all of them, or (pick='failed') those whose log does
    not end with `# Ended (code 0)`."""
    return [t for t, j in job.array_tasks() if pick != "failed" or ended_status(job.log_file(j)) != 0]


def wait_for_tasks(job_id, logs, poll_interval, settle_polls=_SETTLE_POLLS, sleep=time.sleep):
    """Wait until every task's log ({task: path}) has its Ended line, or Slurm shows the job gone
    (squeue no longer lists it and sacct shows none of the unfinished tasks active) for
    settle_polls polls in a row: this lets squeue briefly not know a job just submitted, and
    gives a shared file system time to show the last log lines."""
    idle = 0
    pending = dict(logs)
    while True:
        pending = {t: log for t, log in pending.items() if ended_status(log) is None}
        if not pending:
            return
        listed = squeue_active(job_id)
        if listed:
            idle = 0
        else:
            acct = sacct_tasks(job_id)
            if acct and any(acct[t][0] not in DONE_STATES for t in pending if t in acct):
                idle = 0
            elif listed is False or acct:
                idle += 1  # both failing is no news: keep waiting
        if idle >= settle_polls:
            return
        sleep(poll_interval)


def submit(config, args, logs, cwd):
    """Write the batch script and submit the array tasks of `logs` ({task: its log file}) of
    args.job as one array; the job id."""
    job = args.job
    qdir, name = queue_paths(job)
    script = os.path.join(qdir, name + ".sh")
    sbatch = (config.command + config.sbatch_options(args.given)
              + [f"--job-name={name}", f"--output={os.path.join(qdir, name)}.%a.log",
                 f"--array={array_spec(list(logs), job.max_jobs_run)}", "--parsable", script])
    os.makedirs(qdir, exist_ok=True)
    text = batch_script(job, cwd) + "## submitted with:\n# " + shlex.join(sbatch) + "\n"
    atomic_write_text(script, text)
    os.chmod(script, 0o755)
    for log in logs.values():  # an old log's Ended line must not be taken for this run's
        with contextlib.suppress(FileNotFoundError):
            os.unlink(log)
    rc, out, err = run_command(sbatch)
    if rc != 0:
        msg = (err.strip() or out.strip()).splitlines()[-1:] or ["no message"]
        raise SerError(f"sbatch failed ({'exit ' + str(rc) if rc is not None else 'not run'}): "
                       f"{msg[0]}; command: {shlex.join(sbatch)}")
    job_id = parse_job_id(out)
    if job_id is None:
        raise SerError(f"no job id in the answer of sbatch: {out.strip()!r}")
    return job_id


def run_array(args, prog="slurm.py", log=print):
    """Submit args.job as a Slurm job array, wait for it; [(job, exit status, log file)] for all
    jobs of the range (a job skipped by --pick failed counts as succeeded).

    Messages (nothing to run, tasks without an Ended line) go to `log`. On KeyboardInterrupt or
    SIGTERM/SIGHUP (Terminated) the job is cancelled with scancel and the exception re-raised.
    """
    job = args.job
    config = read_config(args.config)
    config.sbatch_options(args.given)  # an undescribed option fails before anything is written
    tasks = tasks_to_run(job, args.pick)
    if not tasks:
        log(f"{prog}: all {job.num_jobs} jobs already succeeded, nothing to run "
            f"(logs in {job.log_glob()})")
        return [(t, 0, job.log_file(t)) for t in job.job_ids()]
    names = dict(job.array_tasks())
    logs = {t: job.log_file(names[t]) for t in tasks}
    job_id = None
    with signals_raise():  # SIGTERM/SIGHUP while the array runs: Terminated, the job is cancelled
        try:
            job_id = submit(config, args, logs, os.getcwd())
            wait_for_tasks(job_id, logs, args.poll_interval)
        except BaseException as e:
            if job_id is not None and isinstance(e, (KeyboardInterrupt, Terminated)):
                error = scancel(job_id)
                log(f"{prog}: cancelled Slurm job {job_id}" if error is None else
                    f"{prog}: scancel {job_id} failed: {error}")
            raise
    status = {t: ended_status(path) for t, path in logs.items()}
    missing = [t for t, rc in status.items() if rc is None]
    acct = sacct_tasks(job_id) if missing else {}
    qdir, name = queue_paths(job)
    for t in missing:
        state, code = (acct or {}).get(t, (None, None))
        status[t] = sacct_status(state, code) if state else 1
        found = f"sacct says {state} (exit {code})" if state else "sacct has no status for it"
        log(f"{prog}: job {names[t]} of Slurm job {job_id}: no '# Ended' line in {logs[t]}; {found}; "
            f"Slurm's output is in {os.path.join(qdir, name)}.{t}.log")
    return [(j, status.get(t, 0), job.log_file(j)) for t, j in job.array_tasks()]
