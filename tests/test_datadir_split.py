"""Splitting a data dir: split_data.py (by speaker or per utterance, skipped when up to date, bad
counts) and its split points in ser/data/split.py, and the utt2spk <-> spk2utt filters
utt2spk_to_spk2utt.py and spk2utt_to_utt2spk.py, on small data dirs of datadir_helpers.py."""
import os

import pytest

from ser.data.datadir import DataDir
from ser.data.split import split_points
from ser.data.validate import validate_data_dir

import datadir_helpers
from datadir_helpers import read_lines

# The shared fixture, bound here so that pytest finds it.
work = datadir_helpers.work


# --- split --------------------------------------------------------------------------------------

def test_split_by_speaker(work):
    p = work.run("split_data.py", "data/all", "2")
    assert p.returncode == 0 and p.stdout == "", p.stderr
    parts = [DataDir(work.data / "split2" / str(i)) for i in (1, 2)]
    utts = [list(p.utt2spk()) for p in parts]
    assert utts == [["01-a1", "01-a2"], ["02-a1", "02-a2", "03-a1", "03-a2"]]
    for part in parts:
        validate_data_dir(part.path, feats_check="full")
        assert set(part.tables()) == set(DataDir(work.data).tables())


def test_split_is_skipped_when_up_to_date(work):
    assert work.run("split_data.py", "data/all", "3").returncode == 0
    part = work.data / "split3" / "2" / "utt2spk"
    mtime = os.stat(part).st_mtime_ns
    p = work.run("split_data.py", "data/all", "3")
    assert p.returncode == 0 and p.stdout == "split_data.py: data/all/split3 is up to date\n"
    assert os.stat(part).st_mtime_ns == mtime
    future = os.stat(part).st_mtime + 100  # the source changes after the split
    os.utime(work.data / "utt2emo", (future, future))
    p = work.run("split_data.py", "data/all", "3")
    assert p.returncode == 0 and p.stdout == ""
    assert os.stat(part).st_mtime_ns > mtime
    assert read_lines(part) == ["02-a1 02", "02-a2 02"]


def test_split_more_parts_than_speakers(work):
    p = work.run("split_data.py", "data/all", "4")
    assert p.returncode == 1
    assert p.stderr == ("split_data.py: error: data/all has 3 speakers, cannot split it into 4 "
                        "parts by speaker (use --per-utt)\n")
    assert not (work.data / "split4").exists()
    p = work.run("split_data.py", "--per-utt", "data/all", "4")
    assert p.returncode == 0, p.stderr
    sizes = [len(read_lines(work.data / "split4utt" / str(i) / "utt2spk")) for i in range(1, 5)]
    assert sorted(sizes) == [1, 1, 2, 2]
    for i in range(1, 5):
        validate_data_dir(work.data / "split4utt" / str(i))
    p = work.run("split_data.py", "--per-utt", "data/all", "7")
    assert p.returncode == 1 and "has 6 utterances, cannot split it into 7 parts" in p.stderr


@pytest.mark.parametrize("n", ["0", "x"])
def test_split_bad_count_is_a_usage_error(work, n):
    p = work.run("split_data.py", "data/all", n)
    assert p.returncode == 1
    assert p.stderr.startswith("usage: split_data.py")
    assert p.stderr.splitlines()[-1] == (f"split_data.py: error: argument <num-parts>: must be an "
                                         f"integer >= 1, got '{n}'")


def test_split_points_balance():
    assert split_points([5, 1, 1, 1, 1, 1], 2) == [0, 1, 6]
    bounds = split_points([1] * 10, 4)
    sizes = [b - a for a, b in zip(bounds, bounds[1:])]
    assert sum(sizes) == 10 and max(sizes) - min(sizes) <= 1
    assert split_points([100, 1, 1], 3) == [0, 1, 2, 3]  # every part non-empty
    with pytest.raises(ValueError):
        split_points([1, 1], 3)


# --- spk2utt filters ----------------------------------------------------------------------------

def test_utt2spk_to_spk2utt_and_back(work):
    p = work.run("utt2spk_to_spk2utt.py", stdin="a1 s2\nb1 s1\na2 s2\n")
    assert p.returncode == 0 and p.stdout == "s2 a1 a2\ns1 b1\n"  # first-appearance order
    p = work.run("utt2spk_to_spk2utt.py", "data/all/utt2spk")
    assert p.stdout == (work.data / "spk2utt").read_text()
    p = work.run("spk2utt_to_utt2spk.py", stdin="s2 a1 a2\ns1 b1\n")
    assert p.returncode == 0 and p.stdout == "a1 s2\na2 s2\nb1 s1\n"
    p = work.run("spk2utt_to_utt2spk.py", "data/all/spk2utt")
    assert p.stdout == (work.data / "utt2spk").read_text()


def test_spk2utt_filters_reject_bad_lines(work):
    p = work.run("utt2spk_to_spk2utt.py", stdin="a1 s1\nbad\n")
    assert p.returncode == 1
    assert p.stderr == "utt2spk_to_spk2utt.py: error: <stdin>:2: expected '<utt> <spk>', got 'bad'\n"
    p = work.run("spk2utt_to_utt2spk.py", stdin="s1\n")
    assert p.returncode == 1
    assert p.stderr == ("spk2utt_to_utt2spk.py: error: <stdin>:1: expected '<spk> <utt1> ...', "
                        "got 's1'\n")
