"""Leave-one-speaker-out folds (make_folds) and the leak checker (check_folds)."""
import os
import subprocess
import sys

import pytest
import yaml

from ser.bin import make_folds
from ser.data.fold_check import check_folds, strip_to_known
from ser.errors import SerError
from ser.eval.folds import default_pairs, make_loso_folds

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEAKERS = ["03", "08", "09", "10"]
EMOS = ["anger", "neutral", "sadness"]


def write_table(path, table):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for k in sorted(table):
            f.write(f"{k} {table[k]}\n")


def make_data(root, speakers=SPEAKERS, per_spk=3):
    """Data dir: speaker s has utterances s-u0..; labels cycle over EMOS (speaker 10 lacks one)."""
    utt2spk, utt2emo = {}, {}
    for s in speakers:
        for i in range(per_spk if s != "10" else 2):
            u = f"{s}-u{i}"
            utt2spk[u], utt2emo[u] = s, EMOS[i % len(EMOS)]
    d = os.path.join(root, "data")
    write_table(os.path.join(d, "utt2spk"), utt2spk)
    write_table(os.path.join(d, "utt2emo"), utt2emo)
    return d, utt2spk


def read_list(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip()]


def test_make_folds_contents(tmp_path, capsys):
    data, utt2spk = make_data(str(tmp_path))
    out = str(tmp_path / "folds")
    assert make_folds.main(["--scheme", "loso", "--valid", "pair", data, out]) == 0
    assert sorted(os.listdir(out)) == ["1", "2", "3", "4", "classes.txt", "folds.tsv"]
    assert read_list(os.path.join(out, "classes.txt")) == EMOS
    partner = {"03": "08", "08": "03", "09": "10", "10": "09"}   # consecutive sorted pairing
    spk_utts = lambda spks: sorted(u for u, s in utt2spk.items() if s in spks)
    for k, spk in enumerate(SPEAKERS, 1):
        d = os.path.join(out, str(k))
        assert read_list(os.path.join(d, "test.list")) == spk_utts({spk})
        assert read_list(os.path.join(d, "valid.list")) == spk_utts({partner[spk]})
        rest = set(SPEAKERS) - {spk, partner[spk]}
        assert read_list(os.path.join(d, "train.list")) == spk_utts(rest)
        with open(os.path.join(d, "info.yaml")) as f:
            info = yaml.safe_load(f)
        assert info["test_speakers"] == [spk] and info["valid_speakers"] == [partner[spk]]
        assert info["num_train"] + info["num_valid"] + info["num_test"] == len(utt2spk)
    rows = read_list(os.path.join(out, "folds.tsv"))
    assert rows[0].split("\t")[:3] == ["fold", "test_speakers", "valid_speakers"]
    assert rows[4].split("\t") == ["4", "10", "09", "6", "3", "2"]


@pytest.mark.parametrize("valid,pairs", [("pair", None), ("pair", [("03", "10"), ("08", "09")]), ("next", None)])
def test_each_speaker_validates_exactly_once(valid, pairs):
    utt2spk = {f"{s}-u{i}": s for s in SPEAKERS + ["11", "12"] for i in range(2)}
    if pairs:
        pairs = pairs + [("11", "12")]
    folds = make_loso_folds(utt2spk, valid=valid, pairs=pairs)
    assert len(folds) == 6
    valid_spks = [s for f in folds for s in f["valid_speakers"]]
    assert sorted(valid_spks) == sorted(set(utt2spk.values()))
    for f in folds:
        assert f["valid_speakers"] != f["test_speakers"]
        if valid == "pair" and pairs:
            assert tuple(sorted(f["test_speakers"] + f["valid_speakers"])) in {tuple(sorted(p)) for p in pairs}
    if valid == "next":
        assert [f["valid_speakers"][0] for f in folds] == ["08", "09", "10", "11", "12", "03"]


def test_session_pairing_for_iemocap_style_ids():
    spks = ["Ses01F", "Ses01M", "Ses02F", "Ses02M"]
    assert default_pairs(spks) == [("Ses01F", "Ses01M"), ("Ses02F", "Ses02M")]
    # MSP-IMPROV-style ids sort F01 F02 M01 M02: consecutive pairing would be wrong.
    assert default_pairs(["F01", "F02", "M01", "M02"]) == [("F01", "M01"), ("F02", "M02")]


def test_bad_pairing_is_an_error(tmp_path):
    data, _ = make_data(str(tmp_path), speakers=["03", "08", "09"])
    with pytest.raises(SerError, match="odd number of speakers"):
        make_folds.main([data, str(tmp_path / "f")])
    data, _ = make_data(str(tmp_path / "b"))
    with pytest.raises(SerError, match="speaker '77' is not in the data"):
        make_folds.main(["--pairs", "03:77,08:09", data, str(tmp_path / "f")])
    with pytest.raises(SerError, match="speaker.*10 are in no pair"):
        make_folds.main(["--pairs", "03:08", data, str(tmp_path / "f")])
    assert not os.path.exists(tmp_path / "f")


@pytest.mark.parametrize("text, message", [
    ("pairs:\n- 11:13\n- 12:14\n", "bad speaker pair 673: quote each pair, e.g. '11:13'"),   # YAML 1.1: 11*60+13
    ('pairs: ["03:08",\n', "invalid YAML"),
])
def test_a_pairs_file_yaml_mistake_is_a_one_line_error(tmp_path, text, message):
    data, _ = make_data(str(tmp_path), speakers=["11", "12", "13", "14"])
    conf = tmp_path / "folds.yaml"
    conf.write_text(text)
    r = subprocess.run([sys.executable, "-m", "ser.bin.make_folds", "--pairs-file", str(conf), data,
                        str(tmp_path / "f")], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"make_folds.py: error: {conf}") and message in line
    assert not os.path.exists(tmp_path / "f")


def test_idempotent_and_atomic(tmp_path):
    data, _ = make_data(str(tmp_path))
    out = str(tmp_path / "folds")
    make_folds.main(["--pairs", "03:10,08:09", data, out])

    def snapshot():
        snap = {}
        for root, _, names in os.walk(out):
            for n in names:
                p = os.path.join(root, n)
                with open(p, "rb") as f:
                    snap[os.path.relpath(p, out)] = (f.read(), os.stat(p).st_mtime_ns)
        return snap

    first = snapshot()
    make_folds.main(["--pairs", "03:10,08:09", data, out])
    assert snapshot() == first                      # identical bytes, files not even rewritten
    make_folds.main(["--valid", "next", data, out])   # changed inputs replace the whole tree
    assert read_list(os.path.join(out, "1", "valid.list")) == ["08-u0", "08-u1", "08-u2"]
    assert sorted(os.listdir(tmp_path)) == ["data", "folds"]   # no .tmp / .old left behind


def test_emodb_pairs_are_one_male_one_female():
    gender = {"03": "m", "08": "f", "09": "f", "10": "m", "11": "m", "12": "m",
              "13": "f", "14": "f", "15": "m", "16": "f"}
    from ser.eval.folds import partner_map, read_pairs_file
    pairs = read_pairs_file(os.path.join(REPO, "egs", "emodb", "conf", "folds.yaml"))
    partner_map(pairs, list(gender))        # covers every speaker exactly once
    assert all(sorted(gender[a] + gender[b]) == ["f", "m"] for a, b in pairs)
    utt2spk = {f"{s}-x": s for s in gender}
    for f in make_loso_folds(utt2spk, "pair", pairs):
        genders = [gender[s] for s in f["train_speakers"]]
        assert genders.count("m") == genders.count("f") == 4


def run_check(*args):
    return subprocess.run([sys.executable, "-m", "ser.bin.check_folds", *args],
                          capture_output=True, text=True, cwd=REPO)


def test_check_folds_passes_and_catches_a_planted_train_leak(tmp_path):
    data, _ = make_data(str(tmp_path))
    out = str(tmp_path / "folds")
    make_folds.main([data, out])
    assert check_folds(out, data) == 4 and check_folds(out) == 4
    train = os.path.join(out, "2", "train.list")     # fold 2 tests on 08
    with open(train, "a") as f:
        f.write("08-u1\n")
    r = run_check(out, "--data", data)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1
    assert "fold 2:" in r.stderr and train in r.stderr and "'08-u1'" in r.stderr and "also in test.list" in r.stderr
    # the same leak, but the utterance is not in test.list: caught by its speaker
    with open(os.path.join(out, "2", "test.list"), "w") as f:
        f.write("08-u0\n08-u2\n")
    with pytest.raises(SerError, match=r"fold 2: .*2/train.list: utterance '08-u1' belongs to test speaker '08'"):
        check_folds(out)


def test_check_folds_wrong_speaker_in_test_list(tmp_path):
    data, _ = make_data(str(tmp_path))
    out = str(tmp_path / "folds")
    make_folds.main([data, out])
    # move a train utterance of speaker 09 into fold 1's test list
    for name, drop, add in (("train", "09-u0", None), ("test", None, "09-u0")):
        p = os.path.join(out, "1", f"{name}.list")
        utts = [u for u in read_list(p) if u != drop] + ([add] if add else [])
        with open(p, "w") as f:
            f.write("".join(u + "\n" for u in sorted(utts)))
    with pytest.raises(SerError, match=r"fold 1: .*1/test.list: utterance '09-u0' is of speaker '09', "
                                       r"not the fold's test speaker \(03\)"):
        check_folds(out, data)


def make_sp_dir(root, utt2spk, factor="1.1", bad_uniq=None):
    """Kaldi-style speed-perturbed copy: utt sp1.1-<utt>, speaker sp1.1-<spk>, utt2uniq -> source."""
    d = os.path.join(root, f"data_sp{factor}")
    p = f"sp{factor}-"
    uniq = {p + u: u for u in utt2spk}
    uniq.update(bad_uniq or {})
    write_table(os.path.join(d, "utt2spk"), {p + u: p + s for u, s in utt2spk.items()})
    write_table(os.path.join(d, "utt2uniq"), uniq)
    return d


def test_check_folds_catches_augmented_copy_of_test_utterance(tmp_path):
    data, utt2spk = make_data(str(tmp_path))
    out = str(tmp_path / "folds")
    make_folds.main([data, out])
    good = make_sp_dir(str(tmp_path), utt2spk)
    assert check_folds(out, data, [good]) == 4
    assert run_check(out, "--data", data, "--aug-dirs", good).returncode == 0
    # utt2uniq of the copy of test utterance 03-u0 wrongly names a training utterance of fold 1
    bad = make_sp_dir(str(tmp_path / "bad"), utt2spk, bad_uniq={"sp1.1-03-u0": "09-u1"})
    r = run_check(out, "--data", data, "--aug-dirs", f"{good} {bad}")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "fold 1: augmented utterance 'sp1.1-03-u0'" in r.stderr
    assert "held-out utterance '03-u0'" in r.stderr
    assert os.path.join(bad, "utt2uniq") in r.stderr and os.path.join(out, "1", "train.list") in r.stderr
    # a copy listed in train.list directly (no data dir: speakers from info.yaml)
    with open(os.path.join(out, "3", "train.list"), "a") as f:   # fold 3 tests on 09, validates on 10
        f.write("sp1.1-10-u1\n")
    with pytest.raises(SerError, match=r"fold 3: augmented utterance 'sp1.1-10-u1' of held-out utterance "
                                       r"'10-u1' is used for training: it is listed in .*3/train.list"):
        check_folds(out, None, [good])


@pytest.mark.parametrize("name, known, expected", [
    ("sp1.1-03-03a01Fa", {"03-03a01Fa", "08-08a01Fa"}, "03-03a01Fa"),      # the perturbation's prefix
    ("sp1.1-03", {"03", "08"}, "03"),
    ("emodb-sp0.9-03-03a01Fa", {"emodb-03-03a01Fa"}, "emodb-03-03a01Fa"),   # the corpus prefix before it
    ("emodb-sp0.9-03", {"emodb-03", "emodb-08"}, "emodb-03"),
    ("emodb-sp0.9-03-03a01Fa", {"03-03a01Fa"}, "03-03a01Fa"),
    ("sp1.1-11-11b02Wc", {"03-03a01Fa"}, None),
])
def test_a_copy_is_traced_to_its_source_name(name, known, expected):
    assert strip_to_known(name, known) == expected



def test_check_folds_without_data_dir_needs_a_delimiter_after_the_speaker(tmp_path):
    """Without utt2spk an utterance belongs to the listed speaker its id starts with, followed by a
    delimiter: '12-u0' of a training speaker info.yaml does not name is not test speaker 1's."""
    fold = tmp_path / "folds" / "1"
    fold.mkdir(parents=True)
    (fold / "info.yaml").write_text("test_speakers: ['1']\nvalid_speakers: ['2']\n")
    for name, utts in (("test", ["1-u0"]), ("valid", ["2-u0"]), ("train", ["12-u0", "13-u0"])):
        (fold / f"{name}.list").write_text("".join(u + "\n" for u in utts))
    assert check_folds(str(tmp_path / "folds")) == 1
    (fold / "train.list").write_text("1-u1\n12-u0\n")           # a real leak is still caught
    with pytest.raises(SerError, match="utterance '1-u1' belongs to test speaker '1'"):
        check_folds(str(tmp_path / "folds"))
