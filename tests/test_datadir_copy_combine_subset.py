"""Data-dir tools that make a data dir from others: copy_data_dir.py (utterance and speaker
prefixes), combine_data.py (original + perturbed, duplicates, tables missing from a source, extra
files) and subset_data_dir.py (by utterance or speaker list, first/last, errors), on small data
dirs of datadir_helpers.py."""
import os

import kaldiio
import numpy as np
import pytest

from ser.data.kvfile import read_kv
from ser.data.validate import validate_data_dir

import datadir_helpers
from datadir_helpers import UTTS, read_lines, write_lines

# The shared fixture, bound here so that pytest finds it.
work = datadir_helpers.work


# --- copy ---------------------------------------------------------------------------------------

def test_copy_with_perturbation_prefixes(work):
    write_lines(work.data / "utt2uniq", [f"{u} {u}" for u in UTTS])
    (work.data / "frame_shift").write_text("0.01\n")
    p = work.run("copy_data_dir.py", "--utt-prefix", "sp0.9-", "--spk-prefix", "sp0.9-",
                 "data/all", "data/sp")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    sp = work.path / "data" / "sp"
    assert read_lines(sp / "utt2spk")[0] == "sp0.9-01-a1 sp0.9-01"
    assert read_lines(sp / "spk2utt")[2] == "sp0.9-03 sp0.9-03-a1 sp0.9-03-a2"
    assert read_lines(sp / "utt2uniq")[0] == "sp0.9-01-a1 01-a1"  # values stay original ids
    assert read_kv(sp / "feats.scp")["sp0.9-02-a1"] == read_kv(work.data / "feats.scp")["02-a1"]
    assert (sp / "frame_shift").read_text() == "0.01\n"
    assert work.run("validate_data_dir.py", "--full-feats-check", "data/sp").returncode == 0


def test_copy_warns_when_utterances_lose_their_speaker_prefix(work):
    p = work.run("copy_data_dir.py", "--utt-prefix", "x-", "data/all", "data/x")
    assert p.returncode == 0
    assert "6 utterance ids of data/x are not prefixed by their speaker id (e.g. 'x-01-a1')" in p.stderr
    assert read_lines(work.path / "data/x/utt2spk")[0] == "x-01-a1 01"


# --- combine ------------------------------------------------------------------------------------

def test_combine_original_and_perturbed(work):
    (work.data / "frame_shift").write_text("0.01\n")  # same in both sources: kept
    assert work.run("copy_data_dir.py", "--utt-prefix", "sp1.1-", "--spk-prefix", "sp1.1-",
                    "data/all", "data/sp").returncode == 0
    write_lines(work.path / "data/sp/utt2uniq", [f"sp1.1-{u} {u}" for u in UTTS])
    os.makedirs(work.path / "data/comb")
    write_lines(work.path / "data/comb/spk2gender", ["stale 1"])  # a stale table gets removed
    p = work.run("combine_data.py", "data/comb", "data/all", "data/sp")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("combine_data.py: combined 2 data dirs into data/comb: 12 utterances, "
                        "6 speakers\n")
    comb = work.path / "data/comb"
    expected = sorted(UTTS + ["sp1.1-" + u for u in UTTS], key=str.encode)
    assert list(read_kv(comb / "utt2spk")) == expected
    # utt2uniq: identity for the source without it.
    assert read_kv(comb / "utt2uniq") == {u: u.replace("sp1.1-", "") for u in expected}
    assert not (comb / "spk2gender").exists()
    assert (comb / "frame_shift").read_text() == "0.01\n"
    validate_data_dir(comb, feats_check="full")


def test_combine_duplicate_utterances_is_an_error(work):
    assert work.run("subset_data_dir.py", "--first", "3", "data/all", "data/a").returncode == 0
    assert work.run("subset_data_dir.py", "--last", "4", "data/all", "data/b").returncode == 0
    p = work.run("combine_data.py", "data/c", "data/a", "data/b")
    assert p.returncode == 1
    assert p.stderr == ("combine_data.py: error: utterance '02-a1' is in both data/a and data/b "
                        "(utt2spk)\n")


def test_combine_leaves_out_tables_missing_from_a_source_and_takes_extra_files(work):
    p = work.run("subset_data_dir.py", "--spk-list", "list", "data/all", "data/a")
    assert (p.returncode, p.stderr) == (1, "subset_data_dir.py: error: no such file: list\n")
    write_lines(work.path / "list", ["01"])
    assert work.run("subset_data_dir.py", "--spk-list", "list", "data/all", "data/a").returncode == 0
    write_lines(work.path / "list", ["02", "03"])
    assert work.run("subset_data_dir.py", "--spk-list", "list", "data/all", "data/b").returncode == 0
    os.remove(work.path / "data/b/text")
    write_lines(work.path / "data/a/reco2info", ["r1 x"])
    write_lines(work.path / "data/b/reco2info", ["r0 y"])
    p = work.run("combine_data.py", "--extra-files", "reco2info", "data/c", "data/a", "data/b")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ("combine_data.py: warning: text is not in every source (not in data/b): "
                        "left out\n")
    c = work.path / "data/c"
    assert not (c / "text").exists()
    assert read_lines(c / "reco2info") == ["r0 y", "r1 x"]
    assert read_lines(c / "utt2emo") == read_lines(work.data / "utt2emo")
    validate_data_dir(c)
    os.remove(work.path / "data/b/reco2info")
    p = work.run("combine_data.py", "--extra-files", "reco2info", "data/c", "data/a", "data/b")
    assert p.returncode == 1
    assert p.stderr == ("combine_data.py: error: data/b/reco2info: no such file (given in "
                        "--extra-files)\n")


# --- subset -------------------------------------------------------------------------------------

def test_subset_by_utterance_list(work):
    write_lines(work.path / "utts", ["03-a2 extra words ignored", "01-a1"])
    p = work.run("subset_data_dir.py", "--utt-list", "utts", "data/all", "data/sub")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "subset_data_dir.py: wrote 2 utterances of data/all to data/sub\n"
    sub = work.path / "data/sub"
    assert read_lines(sub / "utt2spk") == ["01-a1 01", "03-a2 03"]
    assert read_lines(sub / "spk2utt") == ["01 01-a1", "03 03-a2"]
    assert sorted(os.listdir(sub)) == ["feats.scp", "spk2utt", "text", "utt2dur", "utt2emo",
                                       "utt2num_frames", "utt2spk", "wav.scp"]
    np.testing.assert_array_equal(kaldiio.load_mat(read_kv(sub / "feats.scp")["03-a2"]),
                                  np.full((10, 4), 5, dtype=np.float32))
    validate_data_dir(sub, feats_check="full")


@pytest.mark.parametrize("args, utts", [
    (["--first", "2"], UTTS[:2]),
    (["--last", "3"], UTTS[3:]),
])
def test_subset_first_last(work, args, utts):
    assert work.run("subset_data_dir.py", *args, "data/all", "data/sub").returncode == 0
    assert list(read_kv(work.path / "data/sub/utt2spk")) == utts


def test_subset_by_speaker_list(work):
    write_lines(work.path / "spks", ["02"])
    assert work.run("subset_data_dir.py", "--spk-list", "spks", "data/all", "data/s").returncode == 0
    assert list(read_kv(work.path / "data/s/wav.scp")) == ["02-a1", "02-a2"]


def test_subset_errors(work):
    write_lines(work.path / "utts", ["01-a1", "09-x1", "09-x2"])
    p = work.run("subset_data_dir.py", "--utt-list", "utts", "data/all", "data/sub")
    assert p.returncode == 1
    assert p.stderr == ("subset_data_dir.py: error: utterance '09-x1' (utts:2) is not in "
                        "data/all/utt2spk\n")
    assert not (work.path / "data/sub").exists()
    p = work.run("subset_data_dir.py", "--first", "7", "data/all", "data/sub")
    assert p.returncode == 1 and "cannot take first 7 utterances of data/all/utt2spk: it has 6" in p.stderr
    p = work.run("subset_data_dir.py", "--first", "2", "--last", "2", "data/all", "data/sub")
    assert p.returncode == 1 and "not allowed with argument" in p.stderr


# --- encodings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("tool, args", [
    ("subset_data_dir.py", ["--first", "2", "data/all", "data/sub"]),
    ("copy_data_dir.py", ["--utt-prefix", "x-", "--spk-prefix", "x-", "data/all", "data/x"]),
    ("combine_data.py", ["data/comb", "data/all"]),
    ("fix_data_dir.py", ["data/all"]),
    ("utt2spk_to_spk2utt.py", ["data/all/utt2spk"]),
])
def test_a_table_that_is_not_utf8_is_a_one_line_error_naming_its_line(work, tool, args):
    """A Latin-1 text file (German transcripts) is named with its line, not a traceback."""
    lines = (work.data / "utt2spk").read_bytes().splitlines(keepends=True)
    utt2spk = b"".join(lines[:2] + [lines[2].replace(b"\n", b"") + b"\xf6\n"] + lines[3:])
    (work.data / "utt2spk").write_bytes(utt2spk)
    p = work.run(tool, *args)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [f"{tool}: error: data/all/utt2spk:3: not valid UTF-8 (table files are UTF-8)"]


@pytest.mark.parametrize("tool, args", [
    ("subset_data_dir.py", ["--first", "2", "data/all", "data/sub"]),
    ("copy_data_dir.py", ["data/all", "data/x"]),
    ("combine_data.py", ["data/comb", "data/all"]),
])
@pytest.mark.parametrize("damage, message", [
    (("wav.scp", 3), "data/all/wav.scp: no entry for utterance '02-a2' (utt2spk:4)"),
    (("utt2spk", 3), "data/all/feats.scp:4: utterance '02-a2' is not in utt2spk"),   # tables in name order
    ("two_word_speaker", "data/all/utt2spk:1: value of '01-a1' must be one word, got '01 extra'"),
])
def test_an_inconsistent_source_is_refused_before_anything_is_written(work, tool, args, damage, message):
    """A source whose tables disagree would give a data dir that no stage can use: one line, exit 1."""
    if damage == "two_word_speaker":
        lines = read_lines(work.data / "utt2spk")
        write_lines(work.data / "utt2spk", ["01-a1 01 extra"] + lines[1:])
    else:
        name, drop = damage
        lines = read_lines(work.data / name)
        write_lines(work.data / name, lines[:drop] + lines[drop + 1:])
    p = work.run(tool, *args)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == f"{tool}: error: {message}"
    dest = args[0] if tool == "combine_data.py" else args[-1]
    assert not (work.path / dest).exists()
