"""Hardening of the shared run.sh (issue 15): numeric options and conditions checked before stage 0,
labels and data dirs checked by stages 0 and 2, audio warnings, stage guards at their boundaries,
stage-level skip lines of stages 3 and 4, unfinished trainings refused by stage 4, and the
recipe-dir lock with the kill handling of the local job runner."""
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import copy_recipe, fake_emodb
from training_toy import make_corpus, write_table

FAKE_CMD = """\
# test double of cmd.sh: every job-runner call is recorded in calls.txt, nothing runs
export train_cmd="$PWD/fake_run.sh" cuda_cmd="$PWD/fake_run.sh --gpu 1"
"""
FAKE_RUN = """#!/usr/bin/env bash
echo "$*" >> calls.txt
"""


def run(recipe, env, *args):
    return subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)


def wait_for(pred, what, limit=60.0):
    """Poll until pred() holds (a guard against hanging, not a timing assertion)."""
    end = time.time() + limit
    while not pred():
        if time.time() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.fixture
def recipe(tmp_path):
    return copy_recipe("emodb", tmp_path / "emodb")


def test_bad_numeric_options_fail_before_stage_0(recipe, script_env):
    env = dict(script_env, EMODB="/nowhere")
    for option, value in (("--stage", "abc"), ("--stop_stage", "xyz"), ("--nrepeats", "abc"), ("--first_seed", "0"),
                          ("--nj", "0"), ("--max_jobs", "-1"), ("--threads", "2x"), ("--ngpu", "one"),
                          ("--num_nodes", ""), ("--sampling_steps", "1.5"), ("--eps", "0.0x")):
        r = run(recipe, env, option, value)
        assert r.returncode == 1, (option, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and option.lstrip("-") in r.stderr \
            and repr(value) in r.stderr.replace('"', "'"), (option, r.stderr)
        assert "Stage" not in r.stdout and "integer expression expected" not in r.stderr
    # the SNRs of the noisy test copies are those the snrN conditions name
    r = run(recipe, env, "--conditions", "clean snrten")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "condition 'snrten'" in r.stderr, r.stderr
    assert "Stage" not in r.stdout
    assert not (recipe / "data").exists()


def test_misspelt_snr_condition_is_refused_before_stage_0(recipe, script_env):
    r = run(recipe, dict(script_env, EMODB="/nowhere"), "--conditions", "clean snr5x")
    assert r.returncode == 1 and "unknown test condition 'snr5x'" in r.stderr
    assert "Stage 0" not in r.stdout and not (recipe / "data").exists()


def _stage0(recipe, env, *args):
    return run(recipe, env, "--stop_stage", "0", *args)


@pytest.fixture
def two_speakers(tmp_path, emodb_dir):
    return fake_emodb(emodb_dir, tmp_path / "corpus", {"03", "08"})


def test_labels_outside_the_recipe_classes_are_refused(recipe, two_speakers, script_env):
    env = dict(script_env, EMODB=str(two_speakers))
    # stage 0: the recipe declares its classes; a label it does not declare is refused
    classes = recipe / "conf" / "classes.txt"
    full = classes.read_text()
    classes.write_text(full.replace("boredom\n", ""))
    r = _stage0(recipe, env)
    assert r.returncode == 1 and "label 'boredom'" in r.stderr and "data/all/utt2emo:" in r.stderr
    assert not (recipe / "data" / "all" / ".complete").exists()
    classes.write_text(full)
    assert _stage0(recipe, env).returncode == 0
    # stage 2: an edited utt2emo with a label outside the classes does not become an extra class
    emo = recipe / "data" / "all" / "utt2emo"
    lines = emo.read_text().splitlines()
    lines[4] = lines[4].split()[0] + " joy"
    emo.write_text("\n".join(lines) + "\n")
    r = run(recipe, env, "--stage", "2", "--stop_stage", "2")
    assert r.returncode == 1 and "data/all/utt2emo:5: label 'joy'" in r.stderr, r.stderr
    assert not (recipe / "data" / "all_folds").exists()


def test_stage_2_refuses_an_invalid_data_dir(recipe, two_speakers, script_env):
    env = dict(script_env, EMODB=str(two_speakers))
    assert _stage0(recipe, env).returncode == 0
    spk = recipe / "data" / "all" / "utt2spk"
    lines = spk.read_text().splitlines()
    lines[0], lines[-1] = lines[-1], lines[0]
    spk.write_text("\n".join(lines) + "\n")
    r = run(recipe, env, "--stage", "2", "--stop_stage", "2")
    assert r.returncode == 1 and "utt2spk:" in r.stderr and "not sorted" in r.stderr
    assert not (recipe / "data" / "all_folds" / ".complete").exists()


def test_stage_0_warns_about_short_silent_and_truncated_audio(tmp_path, recipe, emodb_dir, script_env):
    corpus = fake_emodb(emodb_dir, tmp_path / "corpus", {"03"})
    wav = corpus / "wav"
    sf.write(wav / "08a01Wa.wav", 0.1 * np.random.default_rng(0).normal(size=800), 16000)  # 50 ms
    sf.write(wav / "08a02Wa.wav", np.zeros(16000), 16000, subtype="PCM_16")               # silent
    sf.write(wav / "08a04Wa.wav", 0.1 * np.random.default_rng(1).normal(size=16000), 16000, subtype="PCM_16")
    data = (wav / "08a04Wa.wav").read_bytes()
    (wav / "08a04Wa.wav").write_bytes(data[:len(data) // 2])                                # truncated
    r = _stage0(recipe, dict(script_env, EMODB=str(corpus)))
    assert r.returncode == 0, r.stderr
    warnings = [l for l in r.stderr.splitlines() if "warning: 1 audio files" in l]
    assert len(warnings) == 3, r.stderr
    for name, kind in (("08a01Wa", "shorter than 0.1 s"), ("08a02Wa", "silent"), ("08a04Wa", "truncated")):
        assert any(name in l and kind in l for l in warnings), (name, r.stderr)
    listed = (recipe / "data" / "all" / "audio_warnings.txt").read_text()
    assert "08-08a01Wa" in listed and "08-08a02Wa" in listed and "08-08a04Wa" in listed
    assert "03-" not in listed


# --- stages 3-5 on a toy recipe state, with a recording job runner ------------------------------

@pytest.fixture
def toy_state(tmp_path, recipe):
    """The recipe with data/all_spec (toy features), 2 folds, and the recording cmd.sh."""
    corpus = make_corpus(str(tmp_path / "toy"))
    (recipe / "data").mkdir()
    os.rename(corpus["data"], recipe / "data" / "all_spec")
    os.makedirs(recipe / "data" / "all")
    write_table(recipe / "data" / "all" / "utt2emo", {u: ["anger", "neutral", "sadness"][c]
                                                      for u, c in corpus["labels"].items()})
    folds = recipe / "data" / "all_folds"
    for k in (1, 2):
        os.makedirs(folds / str(k))
        for name in ("train", "valid", "test"):
            (folds / str(k) / f"{name}.list").write_text("".join(u + "\n" for u in corpus["lists"][name]))
    (folds / "classes.txt").write_text(Path(corpus["classes"]).read_text())
    (recipe / "cmd.sh").unlink() if (recipe / "cmd.sh").is_symlink() else None
    (recipe / "cmd.sh").write_text(FAKE_CMD)
    (recipe / "fake_run.sh").write_text(FAKE_RUN)
    (recipe / "fake_run.sh").chmod(0o755)
    return recipe


def calls(recipe):
    p = recipe / "calls.txt"
    lines = p.read_text().splitlines() if p.exists() else []
    if p.exists():
        p.unlink()
    return lines


def stages(stdout):
    return sorted({line.split("Stage ")[1][0] for line in stdout.splitlines() if "Stage " in line})


def exp_dir(recipe, call):
    out = call.split("--outdir ")[1].split()[0]
    return recipe / out.split("/fold.")[0]


def test_stage_guards_run_exactly_the_stage_asked(toy_state, script_env):
    recipe, env = toy_state, script_env
    args = ("--models", "cnn", "--augs", "none")
    r = run(recipe, env, *args, "--stage", "3", "--stop_stage", "3")
    assert r.returncode == 0, r.stderr
    assert stages(r.stdout) == ["3"]
    c = calls(recipe)
    assert len(c) == 1 and "JOB=1.1,1.2 " in c[0] and "launch_train.sh" in c[0] and "ser.bin.score" not in c[0]
    d = exp_dir(recipe, c[0])
    for k in (1, 2):
        os.makedirs(d / f"fold.{k}" / "seed1")
        for f in ("model.pt", "done"):
            (d / f"fold.{k}" / "seed1" / f).write_text("")
    r = run(recipe, env, *args, "--stage", "4", "--stop_stage", "4")
    assert r.returncode == 0, r.stderr
    assert stages(r.stdout) == ["4"]
    c = calls(recipe)
    assert len(c) == 1 and "JOB=1:2" in c[0] and "ser.bin.score" in c[0] and "launch_train.sh" not in c[0]
    r = run(recipe, env, *args, "--stage", "5", "--stop_stage", "5")
    assert stages(r.stdout) == ["5"] and "Stage 5: report" in r.stdout
    assert calls(recipe) == []


def test_stages_3_and_4_skip_finished_folds_with_one_line(toy_state, script_env):
    recipe, env = toy_state, script_env
    args = ("--models", "cnn", "--augs", "none")
    run(recipe, env, *args, "--stage", "3", "--stop_stage", "3")
    d = exp_dir(recipe, calls(recipe)[0])
    run1 = d / "fold.1" / "seed1"
    os.makedirs(run1)
    for f in ("model.pt", "done"):
        (run1 / f).write_text("")
    # fold 1 finished: only fold 2 is started, fold 1's log is left alone
    os.makedirs(d / "log")
    (d / "log" / "train.seed1.1.log").write_text("original log\n")
    r = run(recipe, env, *args, "--stage", "3", "--stop_stage", "4")
    c = calls(recipe)
    assert len(c) == 1 and "JOB=1.2 " in c[0] and "launch_train.sh" in c[0], c
    # stage 4 refuses fold 2, whose training has not finished
    assert r.returncode == 1 and "fold.2/seed1: training not finished (no done)" in r.stderr, r.stderr
    # ... unless asked to score what finished: fold 1 alone
    r = run(recipe, env, *args, "--stage", "4", "--stop_stage", "4", "--allow_partial", "true")
    c = calls(recipe)
    assert r.returncode == 0 and "not scoring folds 2 of cnn" in r.stdout, r.stdout + r.stderr
    assert len(c) == 1 and "JOB=1:1" in c[0] and "ser.bin.score" in c[0], c
    run2 = d / "fold.2" / "seed1"
    os.makedirs(run2)
    for f in ("model.pt", "done"):
        (run2 / f).write_text("")
    r = run(recipe, env, *args, "--stage", "3", "--stop_stage", "3")
    assert r.returncode == 0 and "Stage 3: skipped (2 folds done)" in r.stdout and calls(recipe) == []
    assert (d / "log" / "train.seed1.1.log").read_text() == "original log\n"
    # scored folds (done newer than model, features, list) are skipped by stage 4 likewise
    for k in (1, 2):
        os.makedirs(d / f"fold.{k}" / "seed1" / "test_clean")
        (d / f"fold.{k}" / "seed1" / "test_clean" / "done").write_text("")
    r = run(recipe, env, *args, "--stage", "4", "--stop_stage", "4")
    assert r.returncode == 0 and "Stage 4: skipped (2 folds done)" in r.stdout and calls(recipe) == []
    os.utime(run2 / "model.pt", (time.time() + 100, time.time() + 100))  # a retrained fold 2
    r = run(recipe, env, *args, "--stage", "4", "--stop_stage", "4")
    c = calls(recipe)
    assert len(c) == 1 and "JOB=2:2" in c[0] and "ser.bin.score" in c[0]


# --- the lock and kills -------------------------------------------------------------------------

BLOCKING_DATA_SH = """#!/usr/bin/env bash
# test double: holds stage 0 until the test releases it
touch started
while [ ! -e release ]; do sleep 0.05; done
exit 1
"""

JOB_DATA_SH = """#!/usr/bin/env bash
# test double: stage 0 runs one long job through the local job runner (as make_feats.sh does)
run.py JOB=1:1 log/job.JOB.log 'echo $$ > jobpid; sleep 300'
"""


def start(recipe, env, *args):
    # output to a file, not a pipe: a process left running must not keep the test waiting
    with open(recipe / "first_run.log", "w") as log:
        return subprocess.Popen(["./run.sh", *args], cwd=recipe, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def test_second_run_in_a_recipe_dir_stops_naming_the_first(recipe, script_env):
    (recipe / "local" / "data.sh").write_text(BLOCKING_DATA_SH)
    env = dict(script_env, EMODB=str(recipe))
    first = start(recipe, env, "--stop_stage", "0")
    try:
        wait_for(lambda: (recipe / "started").exists(), "stage 0 of the first run")
        # were the second run let in, it must not block too (a new file: the first keeps its own)
        (recipe / "local" / "data.sh.new").write_text("#!/usr/bin/env bash\nexit 3\n")
        (recipe / "local" / "data.sh.new").chmod(0o755)
        os.replace(recipe / "local" / "data.sh.new", recipe / "local" / "data.sh")
        r = run(recipe, env, "--stop_stage", "0")
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert f"pid {first.pid}," in r.stderr and "--stop_stage 0" in r.stderr and "started 20" in r.stderr
        assert "Stage" not in r.stdout
    finally:
        (recipe / "release").write_text("")
        first.wait()
    # the lock file of a finished run is no obstacle
    (recipe / "started").unlink()
    r = run(recipe, env, "--stop_stage", "0")
    assert "another run" not in r.stderr and "Stage 0: data preparation" in r.stdout


def start_with_running_job(recipe, script_env):
    """Start stage 0 with a data.sh whose job keeps running; (env, run.sh process, job pid)."""
    (recipe / "local" / "data.sh").write_text(JOB_DATA_SH)
    env = dict(script_env, EMODB=str(recipe))
    p = start(recipe, env, "--stop_stage", "0")
    wait_for(lambda: (recipe / "jobpid").exists() and (recipe / "jobpid").read_text().strip(), "the job")
    return env, p, int((recipe / "jobpid").read_text())


@pytest.mark.parametrize("how", ["term-run.sh", "int-group"])
def test_interrupting_run_sh_stops_its_jobs(recipe, script_env, how):
    _, p, job = start_with_running_job(recipe, script_env)
    try:
        if how == "term-run.sh":
            p.send_signal(signal.SIGTERM)   # run.sh alone; data.sh and run.py are not signalled
        else:
            os.killpg(p.pid, signal.SIGINT)  # Ctrl-C
        p.wait()
        wait_for(lambda: not alive(job), "the job to be killed")
        log = (recipe / "log" / "job.1.log").read_text()
        assert "# Ended (code 0; signal" in log or "# Ended (code 1" in log or "# Ended (code 143" in log, log
    finally:
        if alive(job):
            os.killpg(job, signal.SIGKILL)


def test_orphans_of_a_killed_run_keep_the_recipe_dir_locked(recipe, script_env):
    env, p, job = start_with_running_job(recipe, script_env)
    try:
        os.killpg(p.pid, signal.SIGKILL)   # run.sh, data.sh and run.py; the job is in its own group
        p.wait()
        assert alive(job)
        (recipe / "local" / "data.sh").write_text("#!/usr/bin/env bash\nexit 3\n")
        r = run(recipe, env, "--stop_stage", "0")
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert "still hold" in r.stderr and str(job) in r.stderr and f"pid {p.pid}," in r.stderr
        assert "Stage" not in r.stdout
    finally:
        os.killpg(job, signal.SIGKILL)
    wait_for(lambda: not alive(job), "the job to die")
    r = run(recipe, env, "--stop_stage", "0")
    assert "still hold" not in r.stderr and "Stage 0" in r.stdout
