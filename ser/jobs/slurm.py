"""Slurm job back-end: run the jobs of a job array as one `sbatch --array` job, as Kaldi slurm.pl.

    slurm.py [--config conf/slurm.conf] [--pick all|failed] [--poll-interval S] [run.py options]
             [JOB=1:N] <log-file> <command> [<args>...]

The calling convention is run.py's (ser/jobs/cli.py). The generic options --mem, --num-threads and
--gpu (and any other option the config describes, e.g. --time) are mapped to sbatch options by a
config file in Kaldi's slurm.pl format (see `parse_config`); --max-jobs-run becomes the array's
`%N` throttle. One batch script, `<log dir>/q/<name>.sh`, runs task $SLURM_ARRAY_TASK_ID with JOB
replaced by the task index and frames its log exactly as the local runner does (`# <command>`,
`# Started at`, output, `# Accounting: ...`, `# Ended (code N) at ...`). slurm.py then waits until
every task's log has its "Ended" line, or Slurm (squeue, then sacct) says the job is gone; a task
without an "Ended" line gets the exit status sacct reports.

`--pick failed` re-runs only the tasks whose log does not end with `# Ended (code 0)`.
"""
import contextlib
import dataclasses
import os
import re
import shlex
import subprocess
import time
from typing import Dict, List, Optional, Tuple

from ser.data.atomic import atomic_write_text
from ser.errors import SerError
from ser.jobs.cli import USAGE as _RUN_USAGE, JobArgs, UsageError, join_command, parse_job_args
from ser.jobs.signals import Terminated, signals_raise

USAGE = _RUN_USAGE + """\
Slurm options (slurm.py):
  --config FILE        maps the options above to sbatch options, Kaldi slurm.pl format
                       (default: the built-in one, as egs/*/conf/slurm.conf); an option the
                       config describes, e.g. `option time=* --time $0`, is accepted as --time
  --pick all|failed    failed: re-run only the jobs whose log does not end with
                       '# Ended (code 0)' (default: all)
  --poll-interval S    seconds between looks at the logs and squeue/sacct (default: 5)
All jobs are submitted as one job array; the batch script is <log dir>/q/<name>.sh and Slurm's
own output of task N goes to <log dir>/q/<name>.N.log.
"""

DEFAULT_CONFIG = """\
command sbatch --export=PATH --ntasks-per-node=1
option mem=* --mem-per-cpu $0
option mem=0
option num_threads=* --cpus-per-task $0
option num_threads=1 --cpus-per-task 1
default gpu=0
option gpu=* -p gpu --gres=gpu:$0
option gpu=0 -p cpu
option num_nodes=* --nodes $0
"""

_GENERIC_OPTIONS = ("max-jobs-run", "num-threads", "mem", "gpu")  # parsed by parse_job_args
_DEFAULT_POLL_SECONDS = 5.0
_SETTLE_POLLS = 6  # polls that Slurm must show the job gone before a missing "Ended" line counts
_CMD_TIMEOUT = 120  # seconds for one squeue/sacct/scancel/sbatch call

# Slurm job states (long and squeue's short names) in which a task will not run (any more).
_DONE_STATES = {
    "COMPLETED", "CD", "FAILED", "F", "CANCELLED", "CA", "TIMEOUT", "TO", "OUT_OF_MEMORY", "OOM",
    "NODE_FAIL", "NF", "BOOT_FAIL", "BF", "DEADLINE", "DL", "PREEMPTED", "PR", "REVOKED", "RV",
    "SPECIAL_EXIT", "SE"}

_ENDED = re.compile(r"^# Ended \(code (\d+)(?:; signal (\d+))?\)")


# --- the config file ----------------------------------------------------------------------------

@dataclasses.dataclass
class SlurmConfig:
    """A parsed slurm.pl config: the submit command and the option-to-sbatch-flags rules."""
    path: str
    command: List[str]
    # name -> {value or "*": (sbatch options text, with $0 for "*"; line number)}
    rules: Dict[str, Dict[str, Tuple[str, int]]]
    defaults: Dict[str, str]

    def sbatch_options(self, given):
        """The sbatch options for the options `given` ({config name: value}) plus the config's
        defaults. An exact `option name=value` rule wins over `option name=*`. Raises SerError
        for an option the config does not describe."""
        values = dict(self.defaults)
        values.update(given)
        order = list(self.rules) + sorted(n for n in values if n not in self.rules)
        words = []
        for name in order:
            if name not in values or name == "max_jobs_run":  # the array throttle, not a flag
                continue
            value = str(values[name])
            rules = self.rules.get(name, {})
            if value in rules:
                text = rules[value][0]
            elif "*" in rules:
                text = rules["*"][0].replace("$0", value)
            else:
                raise SerError(f"option --{name.replace('_', '-')} {value} is not described "
                               f"in {self.path} (no 'option {name}={value}' or "
                               f"'option {name}=*' line)")
            words += shlex.split(text)
        return words


def parse_config(text, path="<config>"):
    """Parse a config in Kaldi's slurm.pl format (see egs/emodb/conf/slurm.conf):

        command sbatch --export=PATH      # the submit command (exactly one such line)
        option mem=* --mem-per-cpu $0     # --mem V adds these options, $0 replaced by V
        option mem=0                      # ... but --mem 0 (an exact value wins) adds nothing
        default gpu=0                     # the value used when the option is not given

    '#' starts a comment. Any other line, or a malformed one, is a SerError naming path:line.
    """
    command, rules, defaults, default_lines = None, {}, {}, {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s*#.*", "", raw).strip()
        if not line:
            continue
        where = f"{path}:{lineno}"
        keyword = line.split()[0]
        if keyword == "command":
            if command is not None:
                raise SerError(f"{where}: a second 'command' line")
            command = _split(line[len("command"):], where)
            if not command:
                raise SerError(f"{where}: 'command' needs the submit program, "
                               f"e.g. 'command sbatch'")
        elif keyword == "option":
            m = re.match(r"^option\s+([A-Za-z_]\w*)=(\S+)(?:\s+(.*))?$", line)
            if not m:
                raise SerError(f"{where}: bad option line '{line}' (expected 'option NAME=VALUE "
                               f"[sbatch options]' or 'option NAME=* <sbatch options with $0>')")
            name, value, flags = m.group(1), m.group(2), m.group(3) or ""
            if value == "*" and flags and "$0" not in flags and name != "max_jobs_run":
                raise SerError(f"{where}: 'option {name}=*' needs $0 (the value) in its options")
            if value != "*" and "$0" in flags:
                raise SerError(f"{where}: $0 is only replaced in 'option {name}=*' lines")
            if value in rules.get(name, {}):
                raise SerError(f"{where}: a second 'option {name}={value}' line "
                               f"(first at line {rules[name][value][1]})")
            _split(flags.replace("$0", "x"), where)
            rules.setdefault(name, {})[value] = (flags, lineno)
        elif keyword == "default":
            m = re.match(r"^default\s+([A-Za-z_]\w*)=(\S+)$", line)
            if not m:
                raise SerError(f"{where}: bad default line '{line}' "
                               f"(expected 'default NAME=VALUE')")
            defaults[m.group(1)] = m.group(2)
            default_lines[m.group(1)] = lineno
        else:
            raise SerError(f"{where}: unknown line '{line}' (expected 'command ...', "
                           f"'option NAME=VALUE ...' or 'default NAME=VALUE')")
    if command is None:
        raise SerError(f"{path}: no 'command' line (e.g. 'command sbatch --export=PATH')")
    for name, lineno in default_lines.items():
        if name not in rules:
            raise SerError(f"{path}:{lineno}: 'default {name}=...' but no 'option {name}=' line")
    return SlurmConfig(path=path, command=command, rules=rules, defaults=defaults)


def _split(text, where):
    try:
        return shlex.split(text)
    except ValueError as e:
        raise SerError(f"{where}: {e}")


def read_config(path=None):
    """The config in `path`, or the built-in default when path is None."""
    if path is None:
        return parse_config(DEFAULT_CONFIG, "<default slurm config>")
    with open(path, encoding="utf-8") as f:
        return parse_config(f.read(), path)


# --- the command line ---------------------------------------------------------------------------

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


# --- logs, array specs, Slurm's answers ---------------------------------------------------------

def ended_status(log):
    """The exit status in the last line of a task log (`# Ended (code N) ...`; negative for
    `code 0; signal S`), or None when the log is missing or its last line is not an Ended line."""
    try:
        with open(log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = tail.rstrip("\n").split("\n")
    m = _ENDED.match(lines[-1]) if tail.endswith("\n") else None  # a line still being written
    if not m:
        return None
    return -int(m.group(2)) if m.group(2) else int(m.group(1))


def tasks_to_run(job, pick="all"):
    """The job indices to submit: all of them, or (pick='failed') those whose log does not end
    with `# Ended (code 0)`."""
    tasks = list(job.job_ids())
    if pick == "failed":
        tasks = [t for t in tasks if ended_status(job.log_file(t)) != 0]
    return tasks


def array_spec(tasks, max_jobs_run=None):
    """sbatch's --array value: [1,2,3,4], 2 -> '1-4%2'; [2,5,7] -> '2,5,7'; runs compressed."""
    tasks = sorted(set(tasks))
    parts, i = [], 0
    while i < len(tasks):
        j = i
        while j + 1 < len(tasks) and tasks[j + 1] == tasks[j] + 1:
            j += 1
        parts.append(str(tasks[i]) if i == j else f"{tasks[i]}-{tasks[j]}")
        i = j + 1
    spec = ",".join(parts)
    return spec if max_jobs_run is None else f"{spec}%{max_jobs_run}"


def expand_array_spec(spec):
    """The task indices of an --array value such as '1-4%2', '2,5,7' or '1-7:2'."""
    tasks = []
    for part in spec.split("%")[0].split(","):
        m = re.match(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$", part.strip())
        if not m:
            raise ValueError(f"bad array spec '{spec}'")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        tasks += range(first, last + 1, int(m.group(3) or 1))
    return tasks


def parse_job_id(sbatch_output):
    """The job id in sbatch's answer: 'Submitted batch job 1234' or (--parsable) '1234;cluster'."""
    m = re.search(r"Submitted batch job (\d+)", sbatch_output)
    if m:
        return m.group(1)
    for line in sbatch_output.splitlines():
        m = re.match(r"^\s*(\d+)(?:;\S*)?\s*$", line)
        if m:
            return m.group(1)
    return None


def parse_sacct(text, job_id):
    """{task: (state, exit code 'N:S')} from `sacct -j ID -n -P -o JobID,State,ExitCode`.

    Job steps (`1234_3.batch`) are skipped; a pending range `1234_[3-4%2]` gives each of its
    tasks the state PENDING; 'CANCELLED by 1000' is reported as CANCELLED.
    """
    tasks = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3:
            continue
        jid, state, code = fields[0], (fields[1].split() or ["UNKNOWN"])[0].rstrip("+"), fields[2]
        m = re.match(rf"^{re.escape(job_id)}_(\d+)$", jid)
        if m:
            tasks[int(m.group(1))] = (state, code)
            continue
        m = re.match(rf"^{re.escape(job_id)}_\[(.+)\]$", jid)
        if m:
            with contextlib.suppress(ValueError):
                for t in expand_array_spec(m.group(1)):
                    tasks[t] = (state, code)
    return tasks


def sacct_status(state, code):
    """An exit status from sacct's State and ExitCode ('N:S'): N, or -S when killed by signal S;
    a task that did not complete never counts as succeeded."""
    m = re.match(r"^(\d+):(\d+)$", code or "")
    rc = 1 if not m else (-int(m.group(2)) if int(m.group(2)) else int(m.group(1)))
    if rc == 0 and state not in ("COMPLETED", "CD"):
        rc = 1
    return rc


# --- the batch script ---------------------------------------------------------------------------

def queue_paths(job):
    """(q directory, name) of a job array: exp/log/name.JOB.log -> ('exp/log/q', 'name')."""
    log_dir = os.path.dirname(job.log_pattern)
    if job.job_var:  # the q directory must not depend on the task: stop above a JOB directory
        parts = log_dir.split(os.sep) if log_dir else []
        keep = []
        for p in parts:
            if job.job_var in p:
                break
            keep.append(p)
        log_dir = os.sep.join(keep) if keep != [""] else os.sep
    base = os.path.basename(job.log_pattern)
    if job.job_var:
        base = re.sub(r"\.?" + re.escape(job.job_var), "", base)
    base = re.sub(r"\.[A-Za-z]{1,5}$", "", base) or "job"
    return os.path.join(log_dir, "q"), base


def batch_script(job, cwd):
    """The bash script that runs one task ($SLURM_ARRAY_TASK_ID) of `job` and writes its log in
    the local runner's format."""
    lines = [
        "#!/bin/bash",
        "# Written by slurm.py: runs task $SLURM_ARRAY_TASK_ID of the job array below, writing its",
        "# log as utils/run.py does. Slurm's own output (hostname, errors of this script) goes to",
        "# the q/ log named by sbatch --output.",
        f"cd {shlex.quote(cwd)} || exit 1",
        "[ -f ./path.sh ] && . ./path.sh  # sbatch --export=PATH passes only PATH",
        "set +eu",
        "sig=",
        "trap 'sig=1' HUP; trap 'sig=2' INT; trap 'sig=15' TERM  # scancel: note it in the log",
        "task=${SLURM_ARRAY_TASK_ID:?not run as a Slurm array task}",
        f"cmd={shlex.quote(join_command(job.command))}",
        f"log={shlex.quote(job.log_pattern)}",
    ]
    if job.job_var:
        lines += [f"cmd=${{cmd//{job.job_var}/$task}}", f"log=${{log//{job.job_var}/$task}}"]
    threads = job.num_threads or 1
    if job.num_threads is not None:
        lines.append(f"export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}")
    lines += [
        '[ "$CUDA_VISIBLE_DEVICES" = NoDevFiles ] && unset CUDA_VISIBLE_DEVICES',
        'echo "# task $task of Slurm job ${SLURM_ARRAY_JOB_ID:-?} on ${HOSTNAME:-?}, log $log"',
        "date_() { LC_ALL=C date '+%a %b %d %H:%M:%S %Z %Y'; }",
        'mkdir -p "$(dirname "$log")"',
        "printf '# %s\\n# Started at %s\\n#\\n' \"$cmd\" \"$(date_)\" > \"$log\" || exit 1",
        "t0=$(date +%s)",
        "rc=1",
        '[ -z "$sig" ] && { bash -c "$cmd" < /dev/null >> "$log" 2>&1; rc=$?; }',
        "elapsed=$(( $(date +%s) - t0 ))",
        'if [ -n "$sig" ]; then code="code 0; signal $sig"; else code="code $rc"; fi',
        f"printf '# Accounting: time=%d threads={threads}\\n"
        "# Ended (%s) at %s, elapsed time %d seconds\\n' "
        '"$elapsed" "$code" "$(date_)" "$elapsed" >> "$log"',
        'if [ -n "$sig" ]; then exit $(( 128 + sig )); fi',
        "exit $rc",
    ]
    return "\n".join(lines) + "\n"


# --- submitting and waiting ---------------------------------------------------------------------

def _run(argv):
    """Run a Slurm command; (exit status, stdout, stderr), status None when it could not run."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=_CMD_TIMEOUT,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "", str(e)
    return p.returncode, p.stdout, p.stderr


def squeue_active(job_id):
    """True when squeue lists a task of the job as not finished, False when it lists none (or
    says the id is invalid: the job left its memory), None when squeue failed otherwise."""
    rc, out, err = _run(["squeue", "-j", job_id, "-h", "-o", "%i %T"])
    if rc != 0:
        return False if "invalid job id" in (out + err).lower() else None
    states = [line.split()[-1] for line in out.splitlines() if line.strip()]
    return any(s.upper() not in _DONE_STATES for s in states)


def sacct_tasks(job_id):
    """parse_sacct of the job, or None when sacct failed (e.g. no accounting)."""
    rc, out, _ = _run(["sacct", "-j", job_id, "-n", "-P", "-o", "JobID,State,ExitCode"])
    return None if rc != 0 else parse_sacct(out, job_id)


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
            if acct and any(acct[t][0] not in _DONE_STATES for t in pending if t in acct):
                idle = 0
            elif listed is False or acct:
                idle += 1  # both failing is no news: keep waiting
        if idle >= settle_polls:
            return
        sleep(poll_interval)


def submit(config, args, tasks, cwd):
    """Write the batch script and submit `tasks` of args.job as one array; the job id."""
    job = args.job
    qdir, name = queue_paths(job)
    script = os.path.join(qdir, name + ".sh")
    sbatch = (config.command + config.sbatch_options(args.given)
              + [f"--job-name={name}", f"--output={os.path.join(qdir, name)}.%a.log",
                 f"--array={array_spec(tasks, job.max_jobs_run)}", "--parsable", script])
    os.makedirs(qdir, exist_ok=True)
    text = batch_script(job, cwd) + "## submitted with:\n# " + shlex.join(sbatch) + "\n"
    atomic_write_text(script, text)
    os.chmod(script, 0o755)
    for t in tasks:  # an old log's Ended line must not be taken for this run's
        with contextlib.suppress(FileNotFoundError):
            os.unlink(job.log_file(t))
    rc, out, err = _run(sbatch)
    if rc != 0:
        msg = (err.strip() or out.strip()).splitlines()[-1:] or ["no message"]
        raise SerError(f"sbatch failed ({'exit ' + str(rc) if rc is not None else 'not run'}): "
                       f"{msg[0]}; command: {shlex.join(sbatch)}")
    job_id = parse_job_id(out)
    if job_id is None:
        raise SerError(f"no job id in the answer of sbatch: {out.strip()!r}")
    return job_id


def scancel(job_id):
    """Cancel the job; an error message, or None."""
    rc, out, err = _run(["scancel", job_id])
    return None if rc == 0 else ((err or out).strip() or f"exit {rc}")


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
    logs = {t: job.log_file(t) for t in tasks}
    job_id = None
    with signals_raise():  # SIGTERM/SIGHUP while the array runs: Terminated, the job is cancelled
        try:
            job_id = submit(config, args, tasks, os.getcwd())
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
        log(f"{prog}: job {t} of Slurm job {job_id}: no '# Ended' line in {logs[t]}; {found}; "
            f"Slurm's output is in {os.path.join(qdir, name)}.{t}.log")
    return [(t, status.get(t, 0), job.log_file(t)) for t in job.job_ids()]
