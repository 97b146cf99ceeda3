"""The parts of the Slurm back-end on their own: the config file (ser/jobs/slurm_config.py), the
slurm.py command line, sbatch's array specs and the answers of sbatch and sacct
(ser/jobs/slurm_commands.py), task logs and the batch script (ser/jobs/slurm_batch.py)."""
import os
import re
import subprocess

import pytest

from ser.errors import SerError
from ser.jobs.cli import UsageError
from ser.jobs.slurm import parse_slurm_args
from ser.jobs.slurm_batch import batch_script, ended_status, queue_paths
from ser.jobs.slurm_commands import array_spec, expand_array_spec, parse_job_id, parse_sacct, sacct_status
from ser.jobs.slurm_config import parse_config, read_config
from slurm_helpers import LOG_RE, SHIPPED_CONF


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


def test_batch_script_of_a_job_list_runs_the_named_job_of_its_task(tmp_path):
    a = parse_slurm_args(["JOB=1.2,2.10,3.1", "exp/log/train.seedJOB.log", "echo", "JOB"]).job
    assert queue_paths(a) == ("exp/log/q", "train.seed")
    script = tmp_path / "s.sh"
    script.write_text(batch_script(a, str(tmp_path)))
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="2")
    p = subprocess.run(["bash", str(script)], env=env, cwd="/", capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert os.listdir(tmp_path / "exp/log") == ["train.seed2.10.log"]
    m = LOG_RE.match((tmp_path / "exp/log/train.seed2.10.log").read_text())
    assert m and (m["cmd"], m["out"], m["rc"]) == ("echo 2.10", "2.10\n", "code 0")
