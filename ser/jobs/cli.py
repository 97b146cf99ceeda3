"""The Kaldi run.pl/queue.pl calling convention, shared by every job back-end.

    run.py [options] [JOB=1:N] <log-file> <program> [<args>...]

Options come first, each as `--name value` (or `--name=value`); then an optional job range
`VAR=start:end` (or `VAR=n`), or a list of job names `VAR=a,b,c` (words of letters, digits, `.`,
`_`, `-`: e.g. `JOB=1.3,2.1` runs (seed, fold) pairs of several seeds as one array, each with its
own log); then the log file, then the command. Every occurrence of VAR (usually JOB) in the
log-file name and in the command is replaced by the job index or name. The command words are
joined into one bash command line as Kaldi does, so a pipe given as a separate word (`\\|`) is a
pipe, and a word holding spaces (`"ark:copy-feats scp:a.scp ark:- |"`) stays one word; a
command given as a single word is a whole shell command line (`run.py log "a | b > c"`).

The parse is kept apart from the execution so that a cluster back-end (Slurm) reuses it.
"""
import dataclasses
import re
from typing import List, Optional

USAGE = """\
Usage: {prog} [options] [JOB=1:N] <log-file> <command> [<args>...]
Runs <command> once, or once per job index of the range JOB=start:end (or per name of the list
JOB=a,b,c), in parallel; the word JOB in <log-file> and in the command is replaced by the job
index or name. Each job's output goes to its log file. Exit status 0 if all jobs succeeded, 1
otherwise.
e.g.: {prog} --max-jobs-run 2 JOB=1:4 exp/log/extract.JOB.log \\
        python -m ser.bin.extract data/train/split4/JOB exp/feats.JOB.ark
Options:
  --max-jobs-run N   run at most N jobs at a time (default: all of them)
  --num-threads N    threads per job: sets OMP_NUM_THREADS and MKL_NUM_THREADS in its
                     environment (default: leave them as they are)
  --mem SIZE         memory per job, e.g. 4G (used by cluster back-ends; ignored locally)
  --gpu N            GPUs per job (used by cluster back-ends; ignored locally)
"""

_RANGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")
_LIST = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=([\w.-]+(?:,[\w.-]+)*)$", re.ASCII)
_MEM = re.compile(r"^\d+(\.\d+)?[KMGTkmgt]?$")


class UsageError(Exception):
    """Wrong command line: the message is printed with the usage."""


@dataclasses.dataclass
class JobArgs:
    """A parsed job command line."""
    command: List[str]            # the program and its arguments, JOB not yet replaced
    log_pattern: str              # the log-file name, JOB not yet replaced
    job_var: Optional[str] = None  # "JOB" (or another name) when a range was given
    start: int = 1
    end: int = 1
    names: Optional[List[str]] = None  # the jobs of a list VAR=a,b,c (instead of start..end)
    max_jobs_run: Optional[int] = None
    num_threads: Optional[int] = None  # None: leave OMP_NUM_THREADS etc. as they are
    mem: Optional[str] = None
    gpu: int = 0

    @property
    def num_jobs(self):
        return len(self.names) if self.names is not None else self.end - self.start + 1

    def job_ids(self):
        """The jobs in order: the indices start..end, or the names of a list."""
        return list(self.names) if self.names is not None else range(self.start, self.end + 1)

    def array_tasks(self):
        """[(array task index, job)]: a cluster array numbers the jobs of a list 1..N."""
        if self.names is not None:
            return list(enumerate(self.names, 1))
        return [(j, j) for j in self.job_ids()]

    def log_file(self, job):
        """The log file of one job."""
        return substitute(self.log_pattern, self.job_var, job)

    def command_line(self, job):
        """The bash command line of one job."""
        return substitute(join_command(self.command), self.job_var, job)

    def log_glob(self):
        """The log-file name with the job index as '*', for messages about several jobs."""
        return substitute(self.log_pattern, self.job_var, "*")


def substitute(text, job_var, job):
    """Replace every occurrence of job_var in text by the job index (as Kaldi: no word boundary)."""
    return text if job_var is None else text.replace(job_var, str(job))


def join_command(args):
    """Join command words into one bash command line, quoting them as Kaldi's run.pl does.

    A word without white space is taken as is (so `|`, `>` and `&&` given as words act as
    shell operators); a word with white space is wrapped in double quotes, or in single quotes
    when it contains a double quote. A command given as one single word is a whole shell
    command line and taken verbatim (`run.py log "a | b"`), since no program has such a name.
    """
    if len(args) == 1:
        return args[0]
    words = []
    for a in args:
        if a and not re.search(r"\s", a):
            words.append(a)
        elif '"' in a:
            words.append("'" + a + "'")
        else:
            words.append('"' + a + '"')
    return " ".join(words)


def _positive_int(name, value, minimum=1):
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or n < minimum:
        raise UsageError(f"option --{name} needs an integer >= {minimum}, got '{value}'")
    return n


def parse_job_args(argv):
    """Parse a run.pl-style command line (without the program name) into a JobArgs.

    Raises UsageError for an unknown option, a bad value, a bad job range, a missing log file
    or command, or a job range whose log file does not contain the job variable.
    """
    argv = list(argv)
    opts = {}
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        arg = argv[i]
        if "=" in arg:
            name, value = arg[2:].split("=", 1)
            i += 1
        else:
            name = arg[2:]
            if i + 1 >= len(argv):
                raise UsageError(f"option {arg} needs a value")
            value = argv[i + 1]
            i += 2
        name = name.replace("_", "-")
        if name not in ("max-jobs-run", "num-threads", "mem", "gpu"):
            raise UsageError(f"unknown option --{name}")
        opts[name] = value

    args = JobArgs(command=[], log_pattern="")
    if "max-jobs-run" in opts:
        args.max_jobs_run = _positive_int("max-jobs-run", opts["max-jobs-run"])
    if "num-threads" in opts:
        args.num_threads = _positive_int("num-threads", opts["num-threads"])
    if "gpu" in opts:
        args.gpu = _positive_int("gpu", opts["gpu"], minimum=0)
    if "mem" in opts:
        if not _MEM.match(opts["mem"]):
            raise UsageError(f"option --mem needs a size such as 4G or 500M, got '{opts['mem']}'")
        args.mem = opts["mem"]

    rest = argv[i:]
    # Like Kaldi, a first word "NAME=..." without a '/' is a job range (log files have a dir).
    if rest and re.match(r"^[A-Za-z_]\w*=[^/]*$", rest[0]):
        m = _RANGE.match(rest[0])
        if m:
            args.job_var = m.group(1)
            args.start = int(m.group(2))
            args.end = int(m.group(3)) if m.group(3) is not None else args.start
            if args.start > args.end:
                raise UsageError(f"invalid job range '{rest[0]}': start > end")
        elif _LIST.match(rest[0]):
            m = _LIST.match(rest[0])
            args.job_var, args.names = m.group(1), m.group(2).split(",")
            repeated = sorted({n for n in args.names if args.names.count(n) > 1})
            if repeated:
                raise UsageError(f"job list '{rest[0]}' names {repeated[0]} twice: both jobs would "
                                 f"write the same log")
        else:
            raise UsageError(f"invalid job range '{rest[0]}' (expected e.g. JOB=1:4 or JOB=a,b)")
        rest = rest[1:]
    if len(rest) < 2:
        raise UsageError("need a log file and a command")
    args.log_pattern, args.command = rest[0], rest[1:]
    if args.job_var is not None and args.num_jobs > 1 and args.job_var not in args.log_pattern:
        raise UsageError(f"the log file '{args.log_pattern}' of a job array must contain "
                         f"{args.job_var}, or all jobs would write to it")
    return args


def failure_report(args, results, prog):
    """Lines telling which jobs failed, as Kaldi's run.pl does; [] when all succeeded.

    results: [(job, exit status, log file)].
    """
    failed = [(job, rc, log) for job, rc, log in results if rc != 0]
    if not failed:
        return []
    if args.num_jobs == 1:
        return [f"{prog}: job failed, log is in {failed[0][2]}"]
    lines = [f"{prog}: {len(failed)} / {args.num_jobs} failed, log is in {args.log_glob()}"]
    lines += [f"{prog}: job {job} failed ({'signal ' + str(-rc) if rc < 0 else 'code ' + str(rc)}), "
              f"log is in {log}" for job, rc, log in failed]
    return lines
