"""The batch script of a Slurm job array and the task logs it writes: where the script goes
(<log dir>/q/<name>.sh), the bash that runs one task with JOB replaced by its index and frames
its log as the local runner does (utils/run.py), and the exit status in a log's last line."""
import os
import re
import shlex

from ser.jobs.cli import join_command

_ENDED = re.compile(r"^# Ended \(code (\d+)(?:; signal (\d+))?\)")


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
    if job.names is not None:  # array task i runs the i-th job of the list
        lines += [f"names=({' '.join(shlex.quote(n) for n in job.names)})", "task=${names[task - 1]}"]
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
