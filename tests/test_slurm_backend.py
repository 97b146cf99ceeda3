"""Slurm job back-end (ser/jobs/slurm.py, utils/slurm.py), run against fake sbatch/squeue/sacct/
scancel programs put first on PATH: sbatch records its arguments and runs the array's tasks here,
one after the other (or in a background process), keeping each task's Slurm state in a file that
squeue and sacct report from."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ser.errors import SerError
from ser.jobs.cli import UsageError
from ser.jobs.slurm import (DEFAULT_CONFIG, array_spec, batch_script, ended_status,
                            expand_array_spec, parse_config, parse_job_id, parse_sacct,
                            parse_slurm_args, queue_paths, read_config, sacct_status)

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONF = REPO / "egs" / "emodb" / "conf" / "slurm.conf"

LOG_RE = re.compile(
    r"\A# (?P<cmd>.*)\n# Started at .+\n#\n(?P<out>(?:.*\n)*?)"
    r"# Accounting: time=(?P<t>\d+) threads=(?P<threads>\d+)\n"
    r"# Ended \((?P<rc>code \d+(?:; signal \d+)?)\) at .+, elapsed time (?P<el>\d+) seconds\n\Z")

FAKE_SBATCH = r'''#!{python}
"""Fake sbatch: records its arguments, runs the array's tasks here, prints the job id."""
import json, os, subprocess, sys

D = os.environ["FAKE_SLURM_DIR"]


def set_state(job, task, text):
    tmp = os.path.join(D, "tmp.%s_%s" % (job, task))
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, os.path.join(D, "state", "%s_%s" % (job, task)))


def run_tasks(job, script, output, tasks):
    for t in tasks:
        set_state(job, t, "RUNNING|0:0")
        env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(t), SLURM_ARRAY_JOB_ID=job,
                   SLURM_JOB_ID=str(int(job) + 1000 + t))
        with open(output.replace("%a", str(t)).replace("%A", job), "w") as f:
            rc = subprocess.call(["bash", script], env=env, stdin=subprocess.DEVNULL,
                                 stdout=f, stderr=subprocess.STDOUT)
        if rc == 0:
            set_state(job, t, "COMPLETED|0:0")
        elif rc < 0:
            set_state(job, t, "FAILED|0:%d" % -rc)
        else:
            set_state(job, t, "FAILED|%d:0" % rc)


if sys.argv[1] == "--fake-run":  # the background runner
    job, script, output, *tasks = sys.argv[2:]
    run_tasks(job, script, output, [int(t) for t in tasks])
    sys.exit(0)

args = sys.argv[1:]
with open(os.path.join(D, "sbatch.jsonl"), "a") as f:
    f.write(json.dumps(args) + "\n")
if os.environ.get("FAKE_SBATCH_FAIL"):
    print("sbatch: error: invalid partition specified: gpu", file=sys.stderr)
    sys.exit(1)
value = {}
for i, a in enumerate(args[:-1]):
    for name in ("--array", "--output", "-o"):
        if a == name:
            value[name] = args[i + 1]
        elif a.startswith(name + "="):
            value[name] = a.split("=", 1)[1]
tasks = []
for part in value["--array"].split("%")[0].split(","):
    first, _, last = part.partition("-")
    tasks += range(int(first), int(last or first) + 1)
counter = os.path.join(D, "next_id")
job = open(counter).read().strip() if os.path.exists(counter) else "1234"
open(counter, "w").write(str(int(job) + 1))
for t in tasks:
    set_state(job, t, "PENDING|0:0")
output = value.get("--output", value.get("-o", "slurm-%A_%a.out"))
if os.environ.get("FAKE_SLURM_BACKGROUND"):
    p = subprocess.Popen([sys.executable, __file__, "--fake-run", job, args[-1], output]
                         + [str(t) for t in tasks], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    open(os.path.join(D, "pid." + job), "w").write(str(p.pid))
else:
    run_tasks(job, args[-1], output, tasks)
print(job if "--parsable" in args else "Submitted batch job " + job)
'''

FAKE_SQUEUE = r'''#!/bin/bash
# Fake squeue -j ID -h -o "%i %T": the job's tasks still pending or running.
D=$FAKE_SLURM_DIR
echo "squeue $*" >> "$D/calls.txt"
case ${FAKE_SQUEUE:-normal} in
  blind) exit 0 ;;  # does not know the job
  error) echo "slurm_load_jobs error: Socket timed out on send/recv operation" >&2; exit 1 ;;
esac
for f in "$D/state/$2"_*; do
  [ -e "$f" ] || continue
  s=$(cut -d'|' -f1 "$f")
  case $s in PENDING|RUNNING) echo "${f##*/} $s" ;; esac
done
'''

FAKE_SACCT = r'''#!/bin/bash
# Fake sacct -j ID -n -P -o JobID,State,ExitCode: one line per task and one per batch step.
D=$FAKE_SLURM_DIR
echo "sacct $*" >> "$D/calls.txt"
if [ "${FAKE_SACCT:-normal}" = error ]; then
  echo "sacct: error: Slurm accounting storage is disabled" >&2; exit 1
fi
for f in "$D/state/$2"_*; do
  [ -e "$f" ] || continue
  IFS='|' read -r s c < "$f"
  echo "${f##*/}|$s|$c"
  echo "${f##*/}.batch|$s|$c"
done
'''

FAKE_SCANCEL = r'''#!/bin/bash
# Fake scancel ID: kills the background runner's process group, marks unfinished tasks cancelled.
D=$FAKE_SLURM_DIR
echo "scancel $*" >> "$D/calls.txt"
[ -f "$D/pid.$1" ] && kill -TERM -- "-$(cat "$D/pid.$1")" 2>/dev/null
for f in "$D/state/$1"_*; do
  [ -e "$f" ] || continue
  case $(cut -d'|' -f1 "$f") in PENDING|RUNNING) echo 'CANCELLED|0:15' > "$f" ;; esac
done
exit 0
'''


@pytest.fixture
def slurm(tmp_path, script_env):
    """(work dir, env, fake-Slurm dir): fakes first on PATH, the shipped conf in work/conf."""
    bin_dir, fake, work = tmp_path / "bin", tmp_path / "slurm", tmp_path / "work"
    for d in (bin_dir, fake / "state", work / "conf"):
        d.mkdir(parents=True)
    for name, text in (("sbatch", FAKE_SBATCH.replace("{python}", sys.executable)),
                       ("squeue", FAKE_SQUEUE), ("sacct", FAKE_SACCT),
                       ("scancel", FAKE_SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    shutil.copy(SHIPPED_CONF, work / "conf" / "slurm.conf")
    env = dict(script_env, FAKE_SLURM_DIR=str(fake))
    env["PATH"] = os.pathsep.join([str(bin_dir), env["PATH"]])
    for k in ("FAKE_SQUEUE", "FAKE_SACCT", "FAKE_SLURM_BACKGROUND", "FAKE_SBATCH_FAIL"):
        env.pop(k, None)
    return work, env, fake


def slurm_py(args, env, cwd, timeout=60):
    return subprocess.run(["slurm.py", "--config", "conf/slurm.conf", "--poll-interval", "0.1",
                           *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def sbatch_calls(fake):
    path = fake / "sbatch.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def calls(fake):
    path = fake / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def has_words(argv, *words):
    """Whether `words` occur in argv consecutively."""
    n = len(words)
    return any(tuple(argv[i:i + n]) == words for i in range(len(argv) - n + 1))


# --- the config file ----------------------------------------------------------------------------

def test_shipped_config_maps_options_like_the_builtin_one():
    shipped, builtin = read_config(str(SHIPPED_CONF)), read_config(None)
    for conf in (shipped, builtin):
        assert conf.command == ["sbatch", "--export=PATH", "--ntasks-per-node=1"]
        assert conf.sbatch_options({}) == ["-p", "cpu"]  # default gpu=0
        assert conf.sbatch_options({"mem": "4G", "num_threads": "2", "gpu": "1"}) == [
            "--mem-per-cpu", "4G", "--cpus-per-task", "2", "-p", "gpu", "--gres=gpu:1"]
        # multi-node training jobs (run.sh --num_nodes M -> $cuda_cmd --num-nodes M)
        assert conf.sbatch_options({"gpu": "4", "num_nodes": "2"}) == [
            "-p", "gpu", "--gres=gpu:4", "--nodes", "2"]
        # exact values win over '*': mem=0 adds nothing, num_threads=1 its own line
        assert conf.sbatch_options({"mem": "0", "num_threads": "1", "gpu": "0"}) == [
            "--cpus-per-task", "1", "-p", "cpu"]
        assert conf.sbatch_options({"gpu": "2", "max_jobs_run": "3"}) == [
            "-p", "gpu", "--gres=gpu:2"]  # max_jobs_run is the array throttle, not a flag
    def rules(conf):
        return {name: {value: text for value, (text, _) in r.items()}
                for name, r in conf.rules.items()}
    assert rules(shipped) == rules(builtin)
    assert shipped.defaults == builtin.defaults == {"gpu": "0"}


def test_config_extra_option_and_comments():
    conf = parse_config("command sbatch -A proj  # account\n\n# a comment\n"
                        "option time=* --time $0\noption gpu=* --gres=gpu:$0 -c $0\n"
                        "option gpu=0\n", "x.conf")
    assert conf.command == ["sbatch", "-A", "proj"]
    assert conf.sbatch_options({"time": "4:00:00", "gpu": "2"}) == [
        "--time", "4:00:00", "--gres=gpu:2", "-c", "2"]
    assert conf.sbatch_options({"gpu": "0"}) == []


@pytest.mark.parametrize("text, message", [
    ("command sbatch\nqueue all.q\n", "x.conf:2: unknown line 'queue all.q'"),
    ("command sbatch\n\noption mem\n", "x.conf:3: bad option line 'option mem'"),
    ("command sbatch\noption time=* --time\n", "x.conf:2: 'option time=*' needs $0"),
    ("command sbatch\noption gpu=1 --gres=gpu:$0\n", "x.conf:2: $0 is only replaced in"),
    ("command sbatch\noption gpu=0\noption gpu=0 -p x\n", "x.conf:3: a second 'option gpu=0'"),
    ("command sbatch\ncommand qsub\n", "x.conf:2: a second 'command' line"),
    ("option mem=0\n", "x.conf: no 'command' line"),
    ("command sbatch\ndefault gpu=0\n", "x.conf:2: 'default gpu=...' but no 'option gpu='"),
    ("command sbatch\noption mem=* --x '$0\n", "x.conf:2: No closing quotation"),
])
def test_config_errors_name_file_and_line(text, message):
    with pytest.raises(SerError, match=re.escape(message)):
        parse_config(text, "x.conf")


def test_undescribed_option_value_is_an_error():
    conf = parse_config("command sbatch\noption gpu=0\noption gpu=1 -p gpu\n", "x.conf")
    assert conf.sbatch_options({"gpu": "1"}) == ["-p", "gpu"]
    with pytest.raises(SerError, match=re.escape(
            "option --gpu 2 is not described in x.conf (no 'option gpu=2' or 'option gpu=*'")):
        conf.sbatch_options({"gpu": "2"})
    with pytest.raises(SerError, match=re.escape("option --num-threads 4 is not described")):
        conf.sbatch_options({"num_threads": "4"})


# --- command line, array specs, Slurm's answers, logs -------------------------------------------

def test_parse_slurm_args_splits_generic_own_and_config_options():
    a = parse_slurm_args(["--config=c.conf", "--pick", "failed", "--poll-interval", "0.5",
                          "--mem", "4G", "--gpu", "1", "--time", "1:00:00", "--max-jobs-run", "2",
                          "JOB=1:3", "log/x.JOB.log", "prog", "--mem", "JOB"])
    assert (a.config, a.pick, a.poll_interval) == ("c.conf", "failed", 0.5)
    assert a.given == {"mem": "4G", "gpu": "1", "time": "1:00:00"}  # max_jobs_run: not mapped
    assert (a.job.max_jobs_run, a.job.start, a.job.end) == (2, 1, 3)
    assert a.job.command == ["prog", "--mem", "JOB"]
    assert parse_slurm_args(["log", "true"]).given == {}  # gpu not given: the config default
    assert parse_slurm_args(["--gpu", "0", "--num-threads", "1", "log", "true"]).given == \
        {"gpu": "0", "num_threads": "1"}


@pytest.mark.parametrize("argv, message", [
    (["--pick", "some", "log", "true"], "--pick needs 'all' or 'failed'"),
    (["--poll-interval", "0", "log", "true"], "--poll-interval needs seconds > 0"),
    (["--poll-interval", "x", "log", "true"], "--poll-interval needs seconds > 0"),
    (["--mem", "lots", "log", "true"], "--mem needs a size"),
    (["JOB=1:4", "log.txt", "true"], "must contain JOB"),
    (["--config"], "option --config needs a value"),
])
def test_parse_slurm_args_errors(argv, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_slurm_args(argv)


def test_array_specs():
    assert array_spec([1, 2, 3, 4], 2) == "1-4%2"
    assert array_spec([2, 5, 7]) == "2,5,7"
    assert array_spec([7, 2, 3, 9, 10], 1) == "2-3,7,9-10%1"
    assert array_spec([1]) == "1"
    for spec, tasks in (("1-4%2", [1, 2, 3, 4]), ("2,5,7", [2, 5, 7]), ("1-7:3", [1, 4, 7]),
                        ("2-3,7,9-10%1", [2, 3, 7, 9, 10])):
        assert expand_array_spec(spec) == tasks


def test_parse_job_id_and_sacct():
    assert parse_job_id("Submitted batch job 98765\n") == "98765"
    assert parse_job_id("98765;cluster1\n") == "98765"
    assert parse_job_id("sbatch: warning: x\n4321\n") == "4321"
    assert parse_job_id("sbatch: error: no\n") is None
    text = ("77_1|COMPLETED|0:0\n77_1.batch|COMPLETED|0:0\n77_2|FAILED|3:0\n"
            "77_3|CANCELLED by 1000|0:15\n77_4|OUT_OF_MEMORY|0:125\n77_[5-6%2]|PENDING|0:0\n"
            "770_1|FAILED|1:0\n")
    assert parse_sacct(text, "77") == {
        1: ("COMPLETED", "0:0"), 2: ("FAILED", "3:0"), 3: ("CANCELLED", "0:15"),
        4: ("OUT_OF_MEMORY", "0:125"), 5: ("PENDING", "0:0"), 6: ("PENDING", "0:0")}
    assert [sacct_status(*v) for v in parse_sacct(text, "77").values()][:4] == [0, 3, -15, -125]
    assert sacct_status("NODE_FAIL", "0:0") == 1  # did not complete: never a success
    assert sacct_status("TIMEOUT", "") == 1


def test_ended_status_reads_the_last_line(tmp_path):
    def status(text):
        (tmp_path / "l").write_text(text)
        return ended_status(tmp_path / "l")
    head = "# cmd\n# Started at x\n#\nout\n# Accounting: time=0 threads=1\n"
    assert status(head + "# Ended (code 0) at x, elapsed time 0 seconds\n") == 0
    assert status(head + "# Ended (code 3) at x, elapsed time 0 seconds\n") == 3
    assert status(head + "# Ended (code 0; signal 15) at x, elapsed time 0 seconds\n") == -15
    assert status(head + "# Ended (code 0) at x, elapsed time 0 seconds\nmore output\n") is None
    assert status(head + "# Ended (code 0) at x, elapsed ti") is None  # still being written
    assert status(head) is None
    assert ended_status(tmp_path / "missing") is None


def test_queue_paths_and_batch_script_runs_one_task(tmp_path):
    a = parse_slurm_args(["--num-threads", "3", "JOB=1:3", "exp/log/name.JOB.log",
                          "echo", "JOB", "$OMP_NUM_THREADS", "a  b"]).job
    assert queue_paths(a) == ("exp/log/q", "name")
    assert queue_paths(parse_slurm_args(["JOB=1:2", "exp/JOB/log", "true"]).job) == ("exp/q", "log")
    script = tmp_path / "s.sh"
    script.write_text(batch_script(a, str(tmp_path)))
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="2")
    p = subprocess.run(["bash", str(script)], env=env, cwd="/", capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    m = LOG_RE.match((tmp_path / "exp/log/name.2.log").read_text())
    assert m and m["cmd"] == 'echo 2 $OMP_NUM_THREADS "a  b"'
    assert (m["out"], m["rc"], m["threads"]) == ("2 3 a  b\n", "code 0", "3")
    assert not (tmp_path / "exp/log/name.1.log").exists()
    p = subprocess.run(["bash", str(script)], env={"PATH": os.environ["PATH"]},
                       capture_output=True, text=True)
    assert p.returncode != 0 and "not run as a Slurm array task" in p.stderr


# --- utils/slurm.py against the fake Slurm ------------------------------------------------------

def test_array_submission_options_and_logs(slurm, script_env):
    work, env, fake = slurm
    job = ["echo", "job=JOB", "dir=split/JOB/x", "threads=$OMP_NUM_THREADS", "&&", "mkdir", "-p",
           "out/JOB"]
    p = slurm_py(["--max-jobs-run", "2", "--mem", "4G", "--num-threads", "2", "--gpu", "1",
                  "JOB=1:4", "exp/log/name.JOB.log", *job], env, work)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    (argv,) = sbatch_calls(fake)
    assert argv[:3] == ["--export=PATH", "--ntasks-per-node=1", "--mem-per-cpu"]
    assert "--array=1-4%2" in argv and "--parsable" in argv
    assert has_words(argv, "--mem-per-cpu", "4G") and has_words(argv, "--cpus-per-task", "2")
    assert has_words(argv, "-p", "gpu", "--gres=gpu:1") and "cpu" not in argv
    assert argv[-1] == "exp/log/q/name.sh" and os.access(work / argv[-1], os.X_OK)
    assert "--output=exp/log/q/name.%a.log" in argv
    assert sorted(os.listdir(work / "exp/log")) == ["name.1.log", "name.2.log", "name.3.log",
                                                    "name.4.log", "q"]
    assert sorted(os.listdir(work / "out")) == ["1", "2", "3", "4"]
    # The logs are those the local runner writes for the same command.
    r = subprocess.run(["run.py", "--num-threads", "2", "JOB=1:4", "local/name.JOB.log", *job],
                       env=script_env, cwd=work, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for j in range(1, 5):
        m = LOG_RE.match((work / f"exp/log/name.{j}.log").read_text())
        assert m, (work / f"exp/log/name.{j}.log").read_text()
        assert m["cmd"] == \
            f"echo job={j} dir=split/{j}/x threads=$OMP_NUM_THREADS && mkdir -p out/{j}"
        assert (m["out"], m["rc"], m["threads"]) == (f"job={j} dir=split/{j}/x threads=2\n",
                                                      "code 0", "2")
        local = LOG_RE.match((work / f"local/name.{j}.log").read_text())
        assert (local["cmd"], local["out"], local["rc"], local["threads"]) == \
            (m["cmd"], m["out"], m["rc"], m["threads"])
        assert (work / f"exp/log/q/name.{j}.log").read_text().startswith(
            f"# task {j} of Slurm job 1234")


def test_single_job_defaults_to_cpu_partition_without_substitution(slurm):
    work, env, fake = slurm
    p = slurm_py(["log/one.log", "echo", "JOB"], env, work)
    assert p.returncode == 0, p.stderr
    (argv,) = sbatch_calls(fake)
    assert has_words(argv, "-p", "cpu") and "--array=1" in argv
    assert not any(a.startswith(("--mem", "--cpus", "--gres")) for a in argv)
    m = LOG_RE.match((work / "log/one.log").read_text())
    assert (m["cmd"], m["out"], m["threads"]) == ("echo JOB", "JOB\n", "1")
    assert (work / "log/q/one.sh").exists()


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


def test_options_the_config_does_not_describe(slurm):
    work, env, fake = slurm
    p = slurm_py(["--time", "1:00:00", "JOB=1:2", "exp/log/t.JOB.log", "true"], env, work)
    assert p.returncode == 1
    assert p.stderr.strip() == (
        "slurm.py: error: option --time 1:00:00 is not described in conf/slurm.conf "
        "(no 'option time=1:00:00' or 'option time=*' line)")
    assert sbatch_calls(fake) == [] and not (work / "exp").exists()
    with open(work / "conf/slurm.conf", "a") as f:
        f.write("option time=* --time $0\n")
    p = slurm_py(["--time", "1:00:00", "JOB=1:2", "exp/log/t.JOB.log", "true"], env, work)
    assert p.returncode == 0, p.stderr
    assert has_words(sbatch_calls(fake)[0], "--time", "1:00:00")


def test_bad_config_line_and_usage_errors(slurm):
    work, env, fake = slurm
    (work / "conf/bad.conf").write_text("command sbatch\nqueue gpu.q\n")
    p = subprocess.run(["slurm.py", "--config", "conf/bad.conf", "log", "true"], env=env, cwd=work,
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.strip() == ("slurm.py: error: conf/bad.conf:2: unknown line 'queue gpu.q' "
                                "(expected 'command ...', 'option NAME=VALUE ...' or "
                                "'default NAME=VALUE')")
    p = slurm_py(["--pick", "some", "log", "true"], env, work)
    assert p.returncode == 1 and p.stderr.startswith("Usage: slurm.py [options]")
    assert p.stderr.splitlines()[-1] == \
        "slurm.py: error: option --pick needs 'all' or 'failed', got 'some'"
    assert sbatch_calls(fake) == []
    p = subprocess.run(["slurm.py", "--help"], env=env, cwd=work, capture_output=True, text=True)
    assert p.returncode == 0 and "--pick all|failed" in p.stdout


def test_cmd_sh_selects_the_backend(tmp_path):
    recipe = REPO / "egs" / "emodb"
    show = 'cd "$1" && . ./cmd.sh && echo "$train_cmd|$cuda_cmd"'
    out = {}
    for backend in ("local", "slurm"):
        p = subprocess.run(["bash", "-c", show, "-", str(recipe)], capture_output=True, text=True,
                           env=dict(os.environ, cmd_backend=backend))
        assert p.returncode == 0, p.stderr
        out[backend] = p.stdout.strip()
    assert out["local"] == "run.py|run.py --gpu 1"
    assert out["slurm"] == \
        "slurm.py --config conf/slurm.conf|slurm.py --config conf/slurm.conf --gpu 1"
    # the config cmd.sh names exists in the recipe and parses
    assert parse_config((recipe / "conf/slurm.conf").read_text()).command[0] == "sbatch"
    assert DEFAULT_CONFIG.splitlines()[0] == "command sbatch --export=PATH --ntasks-per-node=1"
