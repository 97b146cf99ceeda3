"""Job runner: the run.pl-style command-line parse (ser/jobs/cli.py), local execution
(ser/jobs/local.py) and the utils/run.py program."""
import os
import re
import signal
import subprocess
import time

import pytest

from ser.jobs.cli import JobArgs, UsageError, failure_report, join_command, parse_job_args
from ser.jobs.local import run_jobs


def run_py(args, env, cwd, timeout=60):
    return subprocess.run(["run.py", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


# --- parsing ------------------------------------------------------------------------------------

def test_parse_options_range_log_and_command():
    a = parse_job_args(["--max-jobs-run", "2", "--num-threads=3", "--mem", "4G", "--gpu", "1",
                        "JOB=2:5", "exp/log/x.JOB.log", "prog", "--opt", "a JOB"])
    assert (a.max_jobs_run, a.num_threads, a.mem, a.gpu) == (2, 3, "4G", 1)
    assert (a.job_var, a.start, a.end, a.num_jobs) == ("JOB", 2, 5, 4)
    assert a.log_pattern == "exp/log/x.JOB.log"
    assert a.command == ["prog", "--opt", "a JOB"]  # options after the command belong to it
    assert a.log_file(3) == "exp/log/x.3.log"
    assert a.command_line(3) == 'prog --opt "a 3"'
    assert a.log_glob() == "exp/log/x.*.log"


def test_parse_single_job_without_range_substitutes_nothing():
    a = parse_job_args(["log/JOB.txt", "echo", "JOB"])
    assert a.job_var is None and (a.start, a.end) == (1, 1) and a.max_jobs_run is None
    assert a.num_threads is None and a.mem is None and a.gpu == 0
    assert a.log_file(1) == "log/JOB.txt" and a.command_line(1) == "echo JOB"


def test_parse_other_job_variable_and_single_index():
    a = parse_job_args(["TASK=3", "log.TASK", "echo", "TASK"])
    assert (a.job_var, a.start, a.end) == ("TASK", 3, 3)
    assert a.command_line(3) == "echo 3"


def test_parse_job_list_names_the_jobs():
    a = parse_job_args(["JOB=1.2,2.1,2.10", "log/train.seedJOB.log", "echo", "JOB"])
    assert (a.job_var, a.names, a.num_jobs) == ("JOB", ["1.2", "2.1", "2.10"], 3)
    assert list(a.job_ids()) == ["1.2", "2.1", "2.10"]
    assert a.array_tasks() == [(1, "1.2"), (2, "2.1"), (3, "2.10")]
    assert (a.log_file("2.10"), a.command_line("2.10")) == ("log/train.seed2.10.log", "echo 2.10")
    one = parse_job_args(["JOB=1.3", "log.JOB", "true"])  # a list of one name, not a range
    assert (one.names, one.num_jobs) == (["1.3"], 1)
    assert parse_job_args(["JOB=2:4", "log.JOB", "true"]).array_tasks() == [(2, 2), (3, 3), (4, 4)]


@pytest.mark.parametrize("argv, message", [
    (["JOB=1.1,2.1,1.1", "log.JOB", "true"], "job list 'JOB=1.1,2.1,1.1' names 1.1 twice"),
    (["JOB=1.1,", "log.JOB", "true"], "invalid job range 'JOB=1.1,'"),
    (["JOB=3:1", "log.JOB", "true"], "start > end"),
    (["JOB=a:b", "log.JOB", "true"], "invalid job range 'JOB=a:b'"),
    (["JOB=1:", "log.JOB", "true"], "invalid job range"),
    (["JOB=1:4", "log.txt", "true"], "must contain JOB"),
    (["JOB=1:4", "log.JOB"], "need a log file and a command"),
    (["--max-jobs-run", "0", "log", "true"], "--max-jobs-run needs an integer >= 1"),
    (["--mem", "lots", "log", "true"], "--mem needs a size"),
    (["--queue", "q", "log", "true"], "unknown option --queue"),
    (["--gpu"], "option --gpu needs a value"),
])
def test_parse_errors(argv, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_job_args(argv)


def test_join_command_quotes_like_kaldi():
    assert join_command(["a", "|", "b", "x y", 'say "hi"', ""]) == \
        """a | b "x y" 'say "hi"' \"\""""
    assert join_command(["echo a | tr a b"]) == "echo a | tr a b"  # one word: a whole command


def test_failure_report_wording():
    a = JobArgs(command=["x"], log_pattern="l/x.JOB.log", job_var="JOB", start=1, end=3)
    res = [(1, 0, "l/x.1.log"), (2, 1, "l/x.2.log"), (3, -15, "l/x.3.log")]
    assert failure_report(a, res, "run.py") == [
        "run.py: 2 / 3 failed, log is in l/x.*.log",
        "run.py: job 2 failed (code 1), log is in l/x.2.log",
        "run.py: job 3 failed (signal 15), log is in l/x.3.log"]
    assert failure_report(a, [(1, 0, "l/x.1.log")], "run.py") == []


# --- local execution ----------------------------------------------------------------------------

def _intervals(logs):
    """(start, end) times that each job printed into its log."""
    spans = []
    for log in logs:
        t = [float(x) for x in re.findall(r"^T (\S+)$", open(log).read(), re.M)]
        assert len(t) == 2, open(log).read()
        spans.append(tuple(t))
    return spans


TIMED_JOB = "echo T $(date +%s.%N); sleep 0.6; echo T $(date +%s.%N)"


def test_jobs_run_in_parallel(tmp_path):
    t0 = time.time()
    res = run_jobs([TIMED_JOB], str(tmp_path / "log" / "p.JOB.log"), 1, 3, max_jobs=3)
    elapsed = time.time() - t0
    assert [rc for _, rc, _ in res] == [0, 0, 0]
    spans = _intervals([log for _, _, log in res])
    # All three ran at once (timing alone would be flaky on a loaded machine).
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    assert elapsed < 3 * 0.6 + 1.5  # loosely: not serial plus start-up


def test_max_jobs_1_runs_serially(tmp_path):
    t0 = time.time()
    res = run_jobs([TIMED_JOB], str(tmp_path / "s.JOB.log"), 1, 3, max_jobs=1)
    elapsed = time.time() - t0
    spans = sorted(_intervals([log for _, _, log in res]))
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end  # no overlap
    assert elapsed >= 1.8


def test_max_jobs_2_caps_concurrency(tmp_path):
    res = run_jobs([TIMED_JOB], str(tmp_path / "c.JOB.log"), 1, 3, max_jobs=2)
    spans = _intervals([log for _, _, log in res])
    # At the start time of each job, at most 2 jobs (it included) are running.
    for s, _ in spans:
        assert sum(1 for s2, e2 in spans if s2 <= s < e2) <= 2
    assert spans[2][0] >= min(spans[0][1], spans[1][1])  # job 3 waited for a free slot


def test_num_threads_sets_thread_variables(tmp_path):
    res = run_jobs(["echo", "omp=$OMP_NUM_THREADS", "mkl=$MKL_NUM_THREADS"],
                   str(tmp_path / "t.log"), job_var=None, num_threads=3,
                   env={"PATH": os.environ["PATH"]})
    text = open(res[0][2]).read()
    assert "omp=3 mkl=3\n" in text
    assert "# Accounting: time=0 threads=3\n" in text


# --- utils/run.py -------------------------------------------------------------------------------

LOG_RE = re.compile(
    r"\A# (?P<cmd>.*)\n# Started at .+\n#\n(?P<out>(?:.*\n)*?)"
    r"# Accounting: time=(?P<t>\d+) threads=(?P<threads>\d+)\n"
    r"# Ended \((?P<rc>code \d+(?:; signal \d+)?)\) at .+, elapsed time (?P<el>\d+) seconds\n\Z")


def test_run_py_substitutes_job_in_log_name_and_arguments(tmp_path, script_env):
    p = run_py(["JOB=2:3", "exp/log/name.JOB.log", "echo", "job=JOB", "dir=split/JOB/x",
                "&&", "mkdir", "-p", "out/JOB"], script_env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    assert sorted(os.listdir(tmp_path / "exp" / "log")) == ["name.2.log", "name.3.log"]
    assert sorted(os.listdir(tmp_path / "out")) == ["2", "3"]
    for j in (2, 3):
        m = LOG_RE.match((tmp_path / "exp" / "log" / f"name.{j}.log").read_text())
        assert m, (tmp_path / "exp" / "log" / f"name.{j}.log").read_text()
        assert m["cmd"] == f"echo job={j} dir=split/{j}/x && mkdir -p out/{j}"
        assert m["out"] == f"job={j} dir=split/{j}/x\n"
        assert (m["rc"], m["threads"]) == ("code 0", "1")


def test_run_py_job_list_runs_each_name_once_with_its_own_log(tmp_path, script_env):
    names = ["1.2", "2.1", "2.10", "3.1"]
    p = run_py(["--max-jobs-run", "2", "JOB=" + ",".join(names), "log/train.seedJOB.log",
                "echo", "seed=$(echo JOB | cut -d. -f1)", "fold=$(echo JOB | cut -d. -f2)"],
               script_env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(tmp_path / "log")) == sorted(f"train.seed{n}.log" for n in names)
    for n in names:
        m = LOG_RE.match((tmp_path / "log" / f"train.seed{n}.log").read_text())
        seed, fold = n.split(".")
        assert m and m["out"] == f"seed={seed} fold={fold}\n" and m["rc"] == "code 0"


def test_job_list_caps_concurrency_and_reports_in_list_order(tmp_path):
    names = ["2.1", "1.10", "1.2"]
    res = run_jobs([TIMED_JOB], str(tmp_path / "l.JOB.log"), max_jobs=2, names=names)
    assert [job for job, _, _ in res] == names and [rc for _, rc, _ in res] == [0, 0, 0]
    spans = _intervals([log for _, _, log in res])
    for s, _ in spans:
        assert sum(1 for s2, e2 in spans if s2 <= s < e2) <= 2
    assert spans[2][0] >= min(spans[0][1], spans[1][1])  # the third name waited for a free slot
    with pytest.raises(ValueError, match="distinct"):
        run_jobs(["true"], str(tmp_path / "d.JOB.log"), names=["a", "a"])


def test_run_py_pipes_and_quoted_words(tmp_path, script_env):
    p = run_py(["log/a.log", "echo", "abc", "|", "tr", "a-z", "A-Z"], script_env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert LOG_RE.match((tmp_path / "log" / "a.log").read_text())["out"] == "ABC\n"
    p = run_py(["log/b.log", "echo", "x  y", "ark:a b |", 'say "hi"'], script_env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert LOG_RE.match((tmp_path / "log" / "b.log").read_text())["out"] == \
        'x  y ark:a b | say "hi"\n'  # words with spaces stay one word each
    p = run_py(["log/c.log", "echo out; echo err >&2 | cat"], script_env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(LOG_RE.match((tmp_path / "log" / "c.log").read_text())["out"].split()) == \
        ["err", "out"]  # stderr goes to the log too


def test_run_py_failing_jobs_exit_1_and_name_their_logs(tmp_path, script_env):
    p = run_py(["JOB=1:4", "exp/log/name.JOB.log", "test $(( JOB % 2 )) -eq 1"], script_env,
               tmp_path)
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        "run.py: 2 / 4 failed, log is in exp/log/name.*.log",
        "run.py: job 2 failed (code 1), log is in exp/log/name.2.log",
        "run.py: job 4 failed (code 1), log is in exp/log/name.4.log"]
    for j, rc in ((1, "code 0"), (2, "code 1"), (3, "code 0"), (4, "code 1")):
        assert LOG_RE.match((tmp_path / f"exp/log/name.{j}.log").read_text())["rc"] == rc


def test_run_py_single_failing_job(tmp_path, script_env):
    p = run_py(["log.txt", "exit", "3"], script_env, tmp_path)
    assert p.returncode == 1
    assert p.stderr.strip() == "run.py: job failed, log is in log.txt"
    assert LOG_RE.match((tmp_path / "log.txt").read_text())["rc"] == "code 3"


@pytest.mark.parametrize("args", [["JOB=4:1", "l.JOB", "true"], ["JOB=x;y", "l.JOB", "true"], []])
def test_run_py_usage_errors(tmp_path, script_env, args):
    p = run_py(args, script_env, tmp_path)
    assert p.returncode == 1
    assert p.stderr.startswith("Usage: run.py [options] [JOB=1:N] <log-file> <command>")
    assert not list(tmp_path.iterdir())  # nothing ran
    if args:
        assert p.stderr.splitlines()[-1].startswith("run.py: error: invalid job range")


def test_run_py_help(tmp_path, script_env):
    p = run_py(["--help"], script_env, tmp_path)
    assert p.returncode == 0 and p.stdout.startswith("Usage: run.py")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig, rc, message", [
    (signal.SIGTERM, 128 + signal.SIGTERM, "run.py: killed by signal 15; jobs killed"),
    (signal.SIGINT, 130, "run.py: interrupted"),
])
def test_run_py_signal_kills_the_jobs(tmp_path, script_env, sig, rc, message):
    job = "sleep 30 & echo $! > pid.JOB; wait"
    proc = subprocess.Popen(["run.py", "JOB=1:2", "log.JOB", job], env=script_env, cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 20
        while not all((tmp_path / f"pid.{j}").exists() and (tmp_path / f"pid.{j}").read_text()
                      for j in (1, 2)):
            assert time.time() < deadline, "jobs did not start"
            time.sleep(0.05)
        pids = [int((tmp_path / f"pid.{j}").read_text()) for j in (1, 2)]
        assert all(_alive(pid) for pid in pids)
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == rc
    finally:
        if proc.poll() is None:
            proc.kill()
    assert message in proc.stderr.read()
    deadline = time.time() + 5
    while any(_alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)  # the sleeps (grandchildren) are gone too
    assert LOG_RE.match((tmp_path / "log.1").read_text())["rc"] == "code 0; signal 15"
