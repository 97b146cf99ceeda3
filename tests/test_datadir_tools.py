"""Data-dir tools of utils/ (validate, fix, combine, subset, split, copy, spk2utt filters) and
their logic in ser/data/, on small data dirs made in tmp_path with real kaldiio features."""
import os
import re
import subprocess

import kaldiio
import numpy as np
import pytest

from ser.data.datadir import DataDir
from ser.data.kvfile import read_kv
from ser.data.split import split_points
from ser.data.validate import read_checked_table, validate_data_dir
from ser.errors import SerError

SPEAKERS = ("01", "02", "03")
UTTS = [f"{s}-a{i}" for s in SPEAKERS for i in (1, 2)]  # sorted in C order
TOOLS = ["validate_data_dir.py", "fix_data_dir.py", "combine_data.py", "subset_data_dir.py",
         "split_data.py", "copy_data_dir.py", "utt2spk_to_spk2utt.py", "spk2utt_to_utt2spk.py"]


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


# --- utils/train_aug_options.sh: the augmentation -> ser.bin.train options map ----------------------
@pytest.mark.parametrize("aug, expected", [
    ("none", "--mixup false"),
    ("mixup", "--mixup true"),
    ("sp", "--mixup false --aug-policy select --aug-dirs data/all_sp0.9_mel --aug-dirs data/all_sp1.1_mel"),
    ("sp+mixup", "--mixup true --aug-policy select --aug-dirs data/all_sp0.9_mel --aug-dirs data/all_sp1.1_mel"),
    ("syn", "--mixup false --train-source synthetic --synthetic-dirs exp/d/fold.3/syn"),
    ("real+syn", "--mixup false --train-source both --synthetic-dirs exp/d/fold.3/syn"),
    ("real+syn+mixup", "--mixup true --train-source both --synthetic-dirs exp/d/fold.3/syn"),
])
def test_train_aug_options(aug, expected, script_env):
    r = subprocess.run(["train_aug_options.sh", aug, "data/all", "mel", "exp/d/fold.3/syn"],
                       env=script_env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == expected, r.stderr
    # every option it prints is one ser.bin.train accepts
    from ser.bin.train import get_parser
    args = get_parser().parse_args(["--config", "c.yaml", "--feats-dir", "f", "--fold-dir", "d",
                                    "--classes", "c", "--outdir", "o", *expected.split()])
    assert args.mixup == ("mixup" in aug)


def test_train_aug_options_unknown_augmentation(script_env):
    r = subprocess.run(["train_aug_options.sh", "sp_mixup", "data/all", "mel", "x"],
                       env=script_env, capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert "unknown augmentation 'sp_mixup'" in r.stderr
    r = subprocess.run(["train_aug_options.sh", "sp"], env=script_env, capture_output=True, text=True)
    assert r.returncode == 1 and "Usage" in r.stderr
