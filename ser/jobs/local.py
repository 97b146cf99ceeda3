"""Local job back-end: run the jobs of a job array as parallel processes on this machine.

Each job is `bash -c <command line>` with its standard output and error appended to its log file,
which is framed as Kaldi's run.pl frames it:

    # <command line>
    # Started at <date>
    #
    <output of the job>
    # Accounting: time=<seconds> threads=<n>
    # Ended (code <rc>) at <date>, elapsed time <seconds> seconds

At most `max_jobs` jobs run at a time. Each job runs in its own process group, so that on Ctrl-C
or SIGTERM the whole pipeline of every running job is killed, not only its bash.

Started by a recipe's run.sh (utils/recipe_lock.sh), the runner also stops its jobs when that
run.sh is gone (SER_OWNER_PID: killed by SIGTERM or SIGKILL, possibly with an intermediate script
such as make_feats.sh still alive), and passes the recipe's lock (fd SER_LOCK_FD) on to every job,
so that a job orphaned by a SIGKILL of the whole process group keeps a new run out of the dir.
"""
import contextlib
import os
import signal
import subprocess
import sys
import time

from ser.jobs.cli import join_command, substitute
from ser.jobs.signals import Terminated, signals_raise

_GRACE_SECONDS = 2.0  # between SIGTERM and SIGKILL when killing running jobs


def _lock_fds():
    fd = _env_fd("SER_LOCK_FD")
    return () if fd is None else (fd,)


def _date():
    """The date as the `date` command prints it (Kaldi's logs use that)."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def _rc_text(rc):
    """Kaldi's wording of an exit status: 'code 1', or 'code 0; signal 15' for a killed job."""
    return f"code 0; signal {-rc}" if rc < 0 else f"code {rc}"


def _env_fd(name):
    """The open file descriptor named by environment variable `name`, or None."""
    try:
        fd = int(os.environ.get(name, ""))
        os.fstat(fd)
        return fd
    except (ValueError, OSError):
        return None


def _owner_pid():
    try:
        pid = int(os.environ.get("SER_OWNER_PID", ""))
    except ValueError:
        return None
    return pid if pid > 0 and pid != os.getpid() else None


def _alive(pid):
    """Whether process `pid` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class _Job:
    """One running job: its process and log file."""

    def __init__(self, job, command, logfile, env, num_threads):
        self.job, self.command, self.logfile, self.num_threads = job, command, logfile, num_threads
        os.makedirs(os.path.dirname(logfile) or ".", exist_ok=True)
        self.t0 = time.time()
        with open(logfile, "w", encoding="utf-8") as f:
            f.write(f"# {command}\n# Started at {_date()}\n#\n")
        self.log = open(logfile, "ab")
        self.proc = None
        self.env = env

    def start(self):
        self.proc = subprocess.Popen(["bash", "-c", self.command], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True, pass_fds=_lock_fds())

    def finish(self):
        """Close the log with Kaldi's accounting lines; return the exit status."""
        rc = self.proc.returncode
        self.log.close()
        elapsed = int(round(time.time() - self.t0))
        with open(self.logfile, "a", encoding="utf-8") as f:
            f.write(f"# Accounting: time={elapsed} threads={self.num_threads}\n")
            f.write(f"# Ended ({_rc_text(rc)}) at {_date()}, elapsed time {elapsed} seconds\n")
        return rc

    def kill(self, sig):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


def run_jobs(cmd_args, log_pattern, start=1, end=1, max_jobs=None, num_threads=None, env=None,
             job_var="JOB", names=None):
    """Run `cmd_args` (command words, joined as Kaldi does) once per job index start..end, or
    once per job name of the list `names` (started in that order).

    job_var (e.g. "JOB") is replaced by the job index or name in the command and the log-file name;
    job_var=None runs a single job without substitution. At most max_jobs jobs run at a time
    (default: all). num_threads, when given, sets OMP_NUM_THREADS and MKL_NUM_THREADS in the
    jobs' environment (env, default os.environ). Returns [(job, exit status, log file)] in job
    order; a job killed by a signal has a negative status. On KeyboardInterrupt or SIGTERM the
    running jobs are killed and the exception is re-raised.
    """
    if job_var is None:
        names, start, end = None, 1, 1
    if names is not None:
        jobs = list(names)
        if not jobs or len(set(jobs)) < len(jobs):
            raise ValueError(f"job names must be distinct and at least one, got {jobs}")
    elif end < start:
        raise ValueError(f"empty job range {start}:{end}")
    else:
        jobs = list(range(start, end + 1))
    max_jobs = len(jobs) if max_jobs is None else max_jobs
    if max_jobs < 1:
        raise ValueError(f"max_jobs must be >= 1, got {max_jobs}")
    env = dict(os.environ if env is None else env)
    if num_threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(num_threads)
    command = join_command(cmd_args)

    pending = list(jobs)
    running, results = [], {}
    owner = _owner_pid()
    with signals_raise():  # SIGTERM/SIGHUP: Terminated
        try:
            delay = 0.01
            while pending or running:
                while pending and len(running) < max_jobs:
                    job = pending.pop(0)
                    running.append(_Job(job, substitute(command, job_var, job),
                                        substitute(log_pattern, job_var, job), env,
                                        num_threads or 1))
                    running[-1].start()  # once listed, so that a signal now still kills it
                done = [j for j in running if j.proc.poll() is not None]
                for j in done:
                    running.remove(j)
                    results[j.job] = (j.job, j.finish(), j.logfile)
                if owner is not None and not _alive(owner):
                    print(f"run.py: the run that started these jobs (pid {owner}) is gone: "
                          f"killing its jobs", file=sys.stderr)
                    raise Terminated(signal.SIGTERM)
                # Poll quickly at first, then back off, so that long jobs cost no CPU here.
                delay = 0.01 if done else min(delay * 1.5, 0.25)
                if running and not done:
                    time.sleep(delay)
        except BaseException:
            _kill_all(running)
            raise
    return [results[j] for j in jobs]


def _kill_all(running):
    """SIGTERM every running job's process group; SIGKILL those still alive after a grace."""
    for j in [j for j in running if j.proc is None]:
        j.log.close()  # interrupted before it started
    running = [j for j in running if j.proc is not None]
    for j in running:
        j.kill(signal.SIGTERM)
    deadline = time.time() + _GRACE_SECONDS
    for j in running:
        try:
            j.proc.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            j.proc.kill()
            j.proc.wait()
        j.kill(signal.SIGKILL)  # whatever of its pipeline outlived bash
        j.finish()
