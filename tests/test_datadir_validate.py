"""Data-dir checks: the usage of every data-dir tool of utils/, validate_data_dir.py and its
logic in ser/data/validate.py (every corruption it reports, feature checks, required and
per-speaker tables, C order), and fix_data_dir.py, on small data dirs of datadir_helpers.py."""
import os
import re

import kaldiio
import numpy as np
import pytest

from ser.data.kvfile import read_kv
from ser.data.validate import read_checked_table, validate_data_dir
from ser.errors import SerError

import datadir_helpers
from datadir_helpers import UTTS, edit, read_lines, write_lines

# The shared fixture, bound here so that pytest finds it.
work = datadir_helpers.work

TOOLS = ["validate_data_dir.py", "fix_data_dir.py", "combine_data.py", "subset_data_dir.py",
         "split_data.py", "copy_data_dir.py", "utt2spk_to_spk2utt.py", "spk2utt_to_utt2spk.py"]


# --- every tool: usage --------------------------------------------------------------------------

@pytest.mark.parametrize("tool", TOOLS)
def test_help_and_wrong_arguments(work, tool):
    p = work.run(tool, "--help")
    assert p.returncode == 0 and p.stdout.startswith(f"usage: {tool}")
    p = work.run(tool, "--bogus-option", stdin="")
    assert p.returncode == 1
    assert p.stderr.startswith(f"usage: {tool}")
    assert p.stderr.splitlines()[-1].startswith(f"{tool}: error: ")


# --- validate -----------------------------------------------------------------------------------

def test_validate_success(work):
    p = work.run("validate_data_dir.py", "data/all/")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "validate_data_dir.py: Successfully validated data-directory data/all\n"


def _swap_2_3(lines):
    return [lines[0], lines[2], lines[1]] + lines[3:]


CORRUPTIONS = {
    "unsorted": ("utt2emo", _swap_2_3, "data/all/utt2emo:3: not sorted (LC_ALL=C)"),
    "duplicate": ("wav.scp", lambda ls: ls[:2] + [ls[1]] + ls[2:],
                  "data/all/wav.scp:3: duplicate key '01-a2'"),
    "missing-in-text": ("text", lambda ls: ls[:2] + ls[3:],
                        "data/all/text: no entry for utterance '02-a1' (utt2spk:3)"),
    "extra-in-utt2dur": ("utt2dur", lambda ls: ls + ["04-a1 1.0"],
                         "data/all/utt2dur:7: utterance '04-a1' is not in utt2spk"),
    "not-prefixed": ("utt2spk", lambda ls: ls[:2] + ["02-a1 2"] + ls[3:],
                     "data/all/utt2spk:3: utterance id '02-a1' is not prefixed by its speaker id '2'"),
    "bad-duration": ("utt2dur", lambda ls: ls[:1] + ["01-a2 -1"] + ls[2:],
                     "data/all/utt2dur:2: duration '-1' of '01-a2' is not a positive number"),
    "spk2utt": ("spk2utt", lambda ls: ["01 01-a1"] + ls[1:],
                "data/all/spk2utt:1: utterances of speaker '01' do not match utt2spk "
                "(run utils/fix_data_dir.py)"),
    "no-value": ("utt2emo", lambda ls: ls[:3] + ["02-a2"] + ls[4:],
                 "data/all/utt2emo:4: no value for key '02-a2'"),
    "num-frames": ("utt2num_frames", lambda ls: ["01-a1 7"] + ls[1:],
                   "data/all/feats.scp:1: features of '01-a1' have 5 frames, utt2num_frames says 7"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_validate_errors(work, case):
    name, fn, message = CORRUPTIONS[case]
    edit(work.data / name, fn)
    p = work.run("validate_data_dir.py", "data/all")
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == f"validate_data_dir.py: error: {message}\n"


def test_validate_missing_required_file(work):
    os.remove(work.data / "utt2emo")
    p = work.run("validate_data_dir.py", "data/all")
    assert (p.returncode, p.stderr) == (1, "validate_data_dir.py: error: data/all/utt2emo: no such "
                                           "file (required)\n")


def test_validate_unreadable_feats_entry(work):
    # The last entry points past the end of the ark: read by the default check.
    edit(work.data / "feats.scp", lambda ls: ls[:-1] + [ls[-1].rsplit(":", 1)[0] + ":999999"])
    p = work.run("validate_data_dir.py", "data/all")
    assert p.returncode == 1
    assert re.fullmatch(r"validate_data_dir\.py: error: data/all/feats\.scp:6: cannot read "
                        r"features of '03-a2': .+\n", p.stderr), p.stderr
    # --no-feats skips feats.scp.
    assert work.run("validate_data_dir.py", "--no-feats", "data/all").returncode == 0


def test_validate_full_feats_check_reads_every_matrix(work):
    edit(work.data / "feats.scp", lambda ls: ls[:2] + ["02-a1 /nonexistent/feats.ark:12"] + ls[3:])
    assert work.run("validate_data_dir.py", "data/all").returncode == 0  # first/last are fine
    p = work.run("validate_data_dir.py", "--full-feats-check", "data/all")
    assert p.returncode == 1
    assert p.stderr.startswith("validate_data_dir.py: error: data/all/feats.scp:3: cannot read "
                               "features of '02-a1': ")


def test_validate_feature_dimensions_must_agree(work):
    d = work.data
    scp = read_kv(d / "feats.scp")
    with kaldiio.WriteHelper(f"ark,scp:{d / 'other.ark'},{d / 'other.scp'}") as w:
        w("02-a1", np.zeros((7, 3), dtype=np.float32))
    scp["02-a1"] = read_kv(d / "other.scp")["02-a1"]
    os.remove(d / "other.scp")
    write_lines(d / "feats.scp", [f"{k} {v}" for k, v in scp.items()])
    with pytest.raises(SerError, match=r"feats\.scp:3: features of '02-a1' have dimension 3, "
                                       r"the first ones 4"):
        validate_data_dir(d, feats_check="full")
    validate_data_dir(d, feats_check="ends")


def test_validate_wav_required_unless_no_wav_or_feats(work):
    os.remove(work.data / "wav.scp")
    validate_data_dir(work.data)  # feats.scp stands in for wav.scp
    for name in ("feats.scp", "utt2num_frames"):
        os.remove(work.data / name)
    with pytest.raises(SerError, match=r"wav\.scp: no such file \(required\)"):
        validate_data_dir(work.data)
    validate_data_dir(work.data, no_wav=True)


def test_validate_checks_per_speaker_tables(work):
    write_lines(work.data / "spk2gender", ["01 f", "02 m"])
    with pytest.raises(SerError, match=r"spk2gender: no entry for speaker '03' \(utt2spk:5\)"):
        validate_data_dir(work.data)


def test_c_order_is_byte_order(tmp_path):
    write_lines(tmp_path / "ok", ["A 1", "B 1", "a 1", "b_c 1", "bc 1"])  # C: upper < '_' < lower
    assert list(read_checked_table(tmp_path / "ok")[0]) == ["A", "B", "a", "b_c", "bc"]
    write_lines(tmp_path / "bad", ["a 1", "B 1"])  # as en_US would sort it
    with pytest.raises(SerError, match=r"bad:2: not sorted \(LC_ALL=C\)"):
        read_checked_table(tmp_path / "bad")


# --- fix ----------------------------------------------------------------------------------------

def test_fix_data_dir(work):
    d = work.data
    edit(d / "text", lambda ls: ls[:2] + ls[3:])            # 02-a1 has no text
    edit(d / "wav.scp", lambda ls: ls[::-1])                # unsorted
    edit(d / "utt2emo", lambda ls: ls + [ls[0]])            # a repeated line
    edit(d / "utt2dur", lambda ls: ls + ["04-a1 1.0"])      # an utterance not in utt2spk
    broken_text = (d / "text").read_text()
    p = work.run("fix_data_dir.py", "data/all")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("fix_data_dir.py: kept 5 of 6 utterances (1 dropped), 3 speakers, 1 bad "
                        "or repeated lines dropped; old files in data/all/.backup\n")
    kept = [u for u in UTTS if u != "02-a1"]
    for name in ("utt2spk", "wav.scp", "text", "utt2emo", "utt2dur", "feats.scp", "utt2num_frames"):
        assert list(read_kv(d / name, allow_empty=True)) == kept, name
    assert read_lines(d / "spk2utt") == ["01 01-a1 01-a2", "02 02-a2", "03 03-a1 03-a2"]
    assert (d / ".backup" / "text").read_text() == broken_text
    validate_data_dir(d, feats_check="full")


def test_fix_drops_speakers_missing_from_speaker_tables(work):
    write_lines(work.data / "spk2gender", ["01 f", "02 m"])
    p = work.run("fix_data_dir.py", "data/all")
    assert p.returncode == 0, p.stderr
    assert "kept 4 of 6 utterances (2 dropped), 2 speakers" in p.stdout
    assert read_lines(work.data / "spk2utt") == ["01 01-a1 01-a2", "02 02-a1 02-a2"]
    validate_data_dir(work.data)


def test_fix_refuses_to_empty_a_dir(work):
    write_lines(work.data / "text", ["99-x hello"])
    before = (work.data / "utt2spk").read_text()
    p = work.run("fix_data_dir.py", "data/all")
    assert p.returncode == 1
    assert p.stderr == ("fix_data_dir.py: error: data/all: no utterance is in every table file; "
                        "not changing anything\n")
    assert (work.data / "utt2spk").read_text() == before
