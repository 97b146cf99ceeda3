"""Submitting with the Slurm job back-end (ser/jobs/slurm*.py, utils/slurm.py), run against the
fake Slurm of slurm_helpers.py: the sbatch options and logs of an array job (the same logs as the
local runner's), a single job's defaults, options the config does not describe, bad config lines
and usage errors, and cmd.sh selecting the back-end. The parts on their own: test_slurm_parts.py;
failures, reruns and cancelling: test_slurm_failures.py."""
import os
import subprocess

from ser.jobs.slurm_config import DEFAULT_CONFIG, parse_config

import slurm_helpers
from slurm_helpers import LOG_RE, REPO, has_words, sbatch_calls, slurm_py

# The shared fixture, bound here so that pytest finds it.
slurm = slurm_helpers.slurm


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


def test_job_list_is_one_array_of_its_names(slurm):
    work, env, fake = slurm
    p = slurm_py(["--max-jobs-run", "2", "JOB=1.2,2.1,2.10", "exp/log/train.seedJOB.log", "echo", "JOB"],
                 env, work)
    assert p.returncode == 0, p.stderr
    (argv,) = sbatch_calls(fake)
    assert "--array=1-3%2" in argv
    assert sorted(os.listdir(work / "exp/log")) == ["q", "train.seed1.2.log", "train.seed2.1.log",
                                                    "train.seed2.10.log"]
    for name in ("1.2", "2.1", "2.10"):
        m = LOG_RE.match((work / f"exp/log/train.seed{name}.log").read_text())
        assert m and (m["out"], m["rc"]) == (f"{name}\n", "code 0")


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
    # EmoDB has no slurm.conf of its own: the shared one (which exists and parses)
    shared = REPO / "egs" / "TEMPLATE" / "conf" / "slurm.conf"
    assert out["slurm"] == f"slurm.py --config {shared}|slurm.py --config {shared} --gpu 1"
    assert parse_config(shared.read_text()).command[0] == "sbatch"
    # a recipe's own conf/slurm.conf comes first
    own = tmp_path / "recipe"
    (own / "conf").mkdir(parents=True)
    (own / "conf" / "slurm.conf").write_text(shared.read_text())
    (own / "cmd.sh").symlink_to(recipe / "cmd.sh")
    p = subprocess.run(["bash", "-c", show, "-", str(own)], capture_output=True, text=True,
                       env=dict(os.environ, cmd_backend="slurm"))
    assert p.stdout.strip() == "slurm.py --config conf/slurm.conf|slurm.py --config conf/slurm.conf --gpu 1"
    assert DEFAULT_CONFIG.splitlines()[0] == "command sbatch --export=PATH --ntasks-per-node=1"
