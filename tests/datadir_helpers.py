"""Shared parts of the tests of the data-dir tools of utils/ (test_datadir_validate.py,
test_datadir_copy_combine_subset.py, test_datadir_split.py): a small data dir made in tmp_path with
real kaldiio features, table helpers, and the `work` fixture that a test module binds to use it."""
import os
import subprocess

import kaldiio
import numpy as np
import pytest

SPEAKERS = ("01", "02", "03")
UTTS = [f"{s}-a{i}" for s in SPEAKERS for i in (1, 2)]  # sorted in C order


def write_lines(path, lines):
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)


def read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def make_datadir(root, rel="data/all", feats=True):
    """3 speakers x 2 utterances: utt2spk, spk2utt, wav.scp, text, utt2emo, utt2dur, and
    (feats=True) feats.scp + utt2num_frames with real 4-dim matrices of 5..10 frames."""
    d = os.path.join(root, rel)
    os.makedirs(d)
    write_lines(f"{d}/utt2spk", [f"{u} {u[:2]}" for u in UTTS])
    write_lines(f"{d}/spk2utt", [f"{s} {s}-a1 {s}-a2" for s in SPEAKERS])
    write_lines(f"{d}/wav.scp", [f"{u} /corpus/{u}.wav" for u in UTTS])
    write_lines(f"{d}/text", [f"{u} words of {u}" for u in UTTS])
    write_lines(f"{d}/utt2emo", [f"{u} {'anger' if i % 2 else 'neutral'}" for i, u in enumerate(UTTS)])
    write_lines(f"{d}/utt2dur", [f"{u} {1.5 + i}" for i, u in enumerate(UTTS)])
    if feats:
        ark = os.path.abspath(f"{d}/feats.ark")
        with kaldiio.WriteHelper(f"ark,scp:{ark},{d}/feats.scp") as w:
            for i, u in enumerate(UTTS):
                w(u, np.full((5 + i, 4), i, dtype=np.float32))
        write_lines(f"{d}/utt2num_frames", [f"{u} {5 + i}" for i, u in enumerate(UTTS)])
    return d


@pytest.fixture
def work(tmp_path, script_env):
    """cwd tmp_path with data/all; .run(tool, *args) runs a utils tool there."""
    make_datadir(tmp_path)

    class Work:
        path = tmp_path
        data = tmp_path / "data" / "all"

        @staticmethod
        def run(tool, *args, stdin=None):
            return subprocess.run([tool, *map(str, args)], capture_output=True, text=True,
                                  env=script_env, cwd=tmp_path, input=stdin, timeout=60)

    return Work()


def edit(path, fn):
    write_lines(path, fn(read_lines(path)))
