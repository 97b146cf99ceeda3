"""Failures with the Slurm job back-end (ser/jobs/slurm*.py, utils/slurm.py), run against the
fake Slurm of slurm_helpers.py: failing tasks and --pick failed reruns, killed tasks and missing
logs, sacct's status of a task killed without an Ended line, waiting while squeue does not know
the job, signals cancelling the job, and a failing sbatch. Submission: test_slurm_submit.py."""
import signal
import subprocess
import time

import pytest

from ser.jobs.slurm_batch import ended_status

import slurm_helpers
from slurm_helpers import LOG_RE, calls, sbatch_calls, slurm_py

# The shared fixture, bound here so that pytest finds it.
slurm = slurm_helpers.slurm


# --- utils/slurm.py against the fake Slurm ------------------------------------------------------

def test_failing_tasks_then_pick_failed_reruns_only_them(slurm):
    work, env, fake = slurm
    cmd = "echo run JOB >> runs.txt; test -e fixed || test $(( JOB % 2 )) -eq 1"
    p = slurm_py(["JOB=1:4", "exp/log/name.JOB.log", cmd], env, work)
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        "slurm.py: 2 / 4 failed, log is in exp/log/name.*.log",
        "slurm.py: job 2 failed (code 1), log is in exp/log/name.2.log",
        "slurm.py: job 4 failed (code 1), log is in exp/log/name.4.log"]
    for j, rc in ((1, "code 0"), (2, "code 1"), (3, "code 0"), (4, "code 1")):
        assert LOG_RE.match((work / f"exp/log/name.{j}.log").read_text())["rc"] == rc
    kept = {j: (work / f"exp/log/name.{j}.log").read_text() for j in (1, 3)}

    (work / "fixed").touch()
    p = slurm_py(["--pick", "failed", "JOB=1:4", "exp/log/name.JOB.log", cmd], env, work)
    assert p.returncode == 0, p.stderr
    assert "--array=2,4" in sbatch_calls(fake)[-1]
    assert (work / "runs.txt").read_text().split("\n") == \
        ["run 1", "run 2", "run 3", "run 4", "run 2", "run 4", ""]
    for j in (1, 3):
        assert (work / f"exp/log/name.{j}.log").read_text() == kept[j]  # not re-run
    for j in (2, 4):
        assert LOG_RE.match((work / f"exp/log/name.{j}.log").read_text())["rc"] == "code 0"

    p = slurm_py(["--pick", "failed", "--max-jobs-run", "1", "JOB=1:4", "exp/log/name.JOB.log",
                  cmd], env, work)
    assert p.returncode == 0 and len(sbatch_calls(fake)) == 2  # nothing submitted
    assert "all 4 jobs already succeeded, nothing to run" in p.stderr


def test_pick_failed_counts_killed_and_missing_logs_as_failed(slurm):
    work, env, fake = slurm
    log = work / "exp/log"
    log.mkdir(parents=True)
    end = "# Accounting: time=0 threads=1\n# Ended ({}) at x, elapsed time 0 seconds\n"
    (log / "n.1.log").write_text("# x\n" + end.format("code 0"))
    (log / "n.2.log").write_text("# x\n" + end.format("code 0; signal 15"))
    (log / "n.3.log").write_text("# x\n# Started at x\n#\npartial output\n")
    p = slurm_py(["--pick", "failed", "--max-jobs-run", "2", "JOB=1:5", "exp/log/n.JOB.log",
                  "echo", "JOB"], env, work)
    assert p.returncode == 0, p.stderr
    assert "--array=2-5%2" in sbatch_calls(fake)[-1]
    assert (log / "n.1.log").read_text() == "# x\n" + end.format("code 0")
    assert LOG_RE.match((log / "n.3.log").read_text())["out"] == "3\n"


def test_task_killed_without_ended_line_gets_sacct_status(slurm):
    work, env, fake = slurm
    p = slurm_py(["JOB=1:2", "exp/log/k.JOB.log", "test JOB -ne 2 || kill -9 $PPID"], env, work)
    assert p.returncode == 1
    assert "# Ended" not in (work / "exp/log/k.2.log").read_text()
    lines = p.stderr.splitlines()
    assert lines[0] == ("slurm.py: job 2 of Slurm job 1234: no '# Ended' line in exp/log/k.2.log; "
                        "sacct says FAILED (exit 0:9); Slurm's output is in exp/log/q/k.2.log")
    assert lines[1:] == ["slurm.py: 1 / 2 failed, log is in exp/log/k.*.log",
                         "slurm.py: job 2 failed (signal 9), log is in exp/log/k.2.log"]
    assert any(c.startswith("sacct -j 1234 -n -P -o JobID,State,ExitCode") for c in calls(fake))


@pytest.mark.parametrize("squeue, sacct", [("blind", "normal"), ("error", "error")])
def test_waits_while_squeue_does_not_know_the_job(slurm, squeue, sacct):
    """squeue not listing the job (or failing) must not end the wait while sacct shows it active,
    or, with no answer from either, while the logs have no Ended line."""
    work, env, fake = slurm
    env.update(FAKE_SLURM_BACKGROUND="1", FAKE_SQUEUE=squeue, FAKE_SACCT=sacct)
    t0 = time.time()
    p = slurm_py(["JOB=1:2", "exp/log/w.JOB.log", "sleep 0.8; echo done JOB"], env, work)
    assert p.returncode == 0, p.stderr
    assert time.time() - t0 >= 1.6  # both tasks ran, one after the other
    for j in (1, 2):
        assert LOG_RE.match((work / f"exp/log/w.{j}.log").read_text())["out"] == f"done {j}\n"
    polls = calls(fake)
    assert sum(c.startswith("squeue -j 1234 -h") for c in polls) >= 3
    assert sum(c.startswith("sacct -j 1234") for c in polls) >= 3


@pytest.mark.parametrize("sig, rc, message", [
    (signal.SIGTERM, 128 + signal.SIGTERM, "slurm.py: killed by signal 15"),
    (signal.SIGINT, 130, "slurm.py: interrupted"),
])
def test_signal_cancels_the_job(slurm, sig, rc, message):
    work, env, fake = slurm
    env["FAKE_SLURM_BACKGROUND"] = "1"
    proc = subprocess.Popen(["slurm.py", "--poll-interval", "0.1", "JOB=1:2", "log/s.JOB.log",
                             "sleep", "30"], env=env, cwd=work, stderr=subprocess.PIPE, text=True)
    log1 = work / "log/s.1.log"
    try:
        deadline = time.time() + 20
        while not (log1.exists() and "# Started at" in log1.read_text()):
            assert time.time() < deadline and proc.poll() is None, "task 1 did not start"
            time.sleep(0.05)
        time.sleep(0.2)  # let bash start the command
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == rc
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert "slurm.py: cancelled Slurm job 1234" in err and message in err
    assert "scancel 1234" in calls(fake)
    deadline = time.time() + 10  # the batch script notes the signal in the task's log
    while ended_status(log1) is None and time.time() < deadline:
        time.sleep(0.05)
    assert LOG_RE.match(log1.read_text())["rc"] == "code 0; signal 15"
    assert not (work / "log/s.2.log").exists()  # the pending task never ran
    assert (fake / "state/1234_2").read_text().startswith("CANCELLED")


def test_sbatch_failure_is_one_line(slurm):
    work, env, fake = slurm
    env["FAKE_SBATCH_FAIL"] = "1"
    p = slurm_py(["--gpu", "1", "JOB=1:2", "exp/log/f.JOB.log", "true"], env, work)
    assert p.returncode == 1
    assert p.stderr.startswith("slurm.py: error: sbatch failed (exit 1): sbatch: error: invalid "
                               "partition specified: gpu; command: sbatch --export=PATH")
    assert len(p.stderr.splitlines()) == 1
