"""Shared parts of the tests of the Slurm job back-end against a fake Slurm
(test_slurm_submit.py, test_slurm_failures.py; test_slurm_parts.py uses LOG_RE and SHIPPED_CONF):
fake sbatch/squeue/sacct/scancel programs, the `slurm` fixture that puts them first on PATH (a test
module binds it to use it), and helpers to run utils/slurm.py and read what the fakes recorded.

sbatch records its arguments and runs the array's tasks here, one after the other (or in a
background process), keeping each task's Slurm state in a file that squeue and sacct report from."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONF = REPO / "egs" / "TEMPLATE" / "conf" / "slurm.conf"

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
