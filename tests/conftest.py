"""Shared fixtures: repository paths, the shared read-only corpora, and a subprocess environment
in which recipe scripts find utils/ and the venv's python, as after `. ./path.sh`."""
import os
import signal
import sys
from pathlib import Path

import pytest

# A test run started in the background by a script (`cmd &`) inherits SIGINT ignored, and so would
# every program it starts (an ignored signal survives exec); the tests that interrupt a job runner
# or run.sh need the default. A handler of this process is reset to the default in its children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SER_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared corpora not found at {SHARED} (set SER_SHARED_DATA)")
        pytest.skip(f"shared corpora not found at {SHARED} (set SER_SHARED_DATA)")
    return SHARED


@pytest.fixture(scope="session")
def emodb_dir(shared_data):
    return shared_data / "emodb"


@pytest.fixture
def script_env():
    """Environment for running utils/ and recipe scripts: venv python and utils/ first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(REPO / "utils"), os.path.dirname(sys.executable), env.get("PATH", "")])
    env["LC_ALL"] = "C"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def copy_recipe(name, dest):
    """A copy of egs/<name> in `dest` (without data/exp/feats), its utils link pointing at the repo's."""
    import shutil

    src = REPO / "egs" / name
    skip = {"data", "exp", "feats", "downloads", "utils", "RESULTS.md", "results"}
    shutil.copytree(src, dest, symlinks=False,
                    ignore=lambda d, names: skip & set(names) if Path(d) == src else set())
    (Path(dest) / "utils").symlink_to(REPO / "utils")
    return Path(dest)


def fake_emodb(src, dest, speakers):
    """An EmoDB root in `dest` whose wav/ links the files of `speakers` from the real copy `src`."""
    wav = Path(dest) / "wav"
    wav.mkdir(parents=True)
    for f in sorted((Path(src) / "wav").iterdir()):
        if f.name[:2] in speakers:
            (wav / f.name).symlink_to(f)
    return Path(dest)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny networks (`pytestmark = pytest.mark.usefixtures("one_thread")`):
    on a shared 2-core machine one thread is faster than two contended ones (OpenMP barrier stalls)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
