"""Talking to Slurm: sbatch's --array value of a set of task indices, the calls of squeue, sacct
and scancel (each with a timeout; a failed call is reported, not raised), and the parse of their
answers and of sbatch's."""
import contextlib
import re
import subprocess

COMMAND_TIMEOUT = 120  # seconds for one squeue/sacct/scancel/sbatch call

# Slurm job states (long and squeue's short names) in which a task will not run (any more).
DONE_STATES = {
    "COMPLETED", "CD", "FAILED", "F", "CANCELLED", "CA", "TIMEOUT", "TO", "OUT_OF_MEMORY", "OOM",
    "NODE_FAIL", "NF", "BOOT_FAIL", "BF", "DEADLINE", "DL", "PREEMPTED", "PR", "REVOKED", "RV",
    "SPECIAL_EXIT", "SE"}


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


def run_command(argv):
    """Run a Slurm command; (exit status, stdout, stderr), status None when it could not run."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "", str(e)
    return p.returncode, p.stdout, p.stderr


def squeue_active(job_id):
    """True when squeue lists a task of the job as not finished, False when it lists none (or
    says the id is invalid: the job left its memory), None when squeue failed otherwise."""
    rc, out, err = run_command(["squeue", "-j", job_id, "-h", "-o", "%i %T"])
    if rc != 0:
        return False if "invalid job id" in (out + err).lower() else None
    states = [line.split()[-1] for line in out.splitlines() if line.strip()]
    return any(s.upper() not in DONE_STATES for s in states)


def sacct_tasks(job_id):
    """parse_sacct of the job, or None when sacct failed (e.g. no accounting)."""
    rc, out, _ = run_command(["sacct", "-j", job_id, "-n", "-P", "-o", "JobID,State,ExitCode"])
    return None if rc != 0 else parse_sacct(out, job_id)


def scancel(job_id):
    """Cancel the job; an error message, or None."""
    rc, out, err = run_command(["scancel", job_id])
    return None if rc == 0 else ((err or out).strip() or f"exit {rc}")
