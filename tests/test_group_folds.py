"""Fold scheme `groups` (ser.eval.folds.make_group_folds, make_folds --conf) and RAVDESS's
6 folds of 4 held-out actors (egs/ravdess/conf/folds.yaml)."""
import os
import subprocess
import sys

import pytest
import yaml

from ser.errors import SerError
from ser.eval.folds import folds_scheme, make_group_folds, read_groups_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAVDESS_CONF = os.path.join(REPO, "egs", "ravdess", "conf", "folds.yaml")
ACTORS = [f"{a:02d}" for a in range(1, 25)]


def ravdess_like(tmp_path):
    """A data dir of 24 actors x 3 utterances (2 emotions)."""
    d = tmp_path / "data"
    d.mkdir()
    utts = {f"{a}-03-01-0{e}-01-01-{k:02d}-{a}": (a, ["neutral", "angry"][e % 2])
            for a in ACTORS for e, k in ((1, 1), (2, 2), (1, 3))}
    (d / "utt2spk").write_text("".join(f"{u} {a}\n" for u, (a, _) in sorted(utts.items())))
    (d / "utt2emo").write_text("".join(f"{u} {e}\n" for u, (_, e) in sorted(utts.items())))
    return d, {u: a for u, (a, _) in utts.items()}


def test_ravdess_folds_are_speaker_disjoint_and_test_every_actor_once(tmp_path):
    _, utt2spk = ravdess_like(tmp_path)
    assert folds_scheme(RAVDESS_CONF) == "groups"
    folds = make_group_folds(utt2spk, read_groups_file(RAVDESS_CONF), RAVDESS_CONF)
    assert len(folds) == 6
    tested = [s for f in folds for s in f["test_speakers"]]
    assert sorted(tested) == ACTORS                      # every actor tested exactly once
    for f in folds:
        test, valid, train = (set(f[k]) for k in ("test_speakers", "valid_speakers", "train_speakers"))
        assert len(test) == 4 and len(valid) == 2 and len(train) == 18
        assert not (test & valid or test & train or valid & train)
        assert test | valid | train == set(ACTORS)
        # utterance lists follow the speakers, and both genders are in every part
        for part, spks in (("test", test), ("valid", valid), ("train", train)):
            assert {utt2spk[u] for u in f[part]} == spks
            assert {int(s) % 2 for s in spks} == {0, 1}


def test_make_folds_conf_writes_group_folds(tmp_path):
    data, _ = ravdess_like(tmp_path)
    out = tmp_path / "folds"
    r = subprocess.run([sys.executable, "-m", "ser.bin.make_folds", "--conf", RAVDESS_CONF, str(data), str(out)],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "6 groups folds" in r.stdout
    assert sorted(os.listdir(out)) == ["1", "2", "3", "4", "5", "6", "classes.txt", "folds.tsv"]
    info = yaml.safe_load((out / "3" / "info.yaml").read_text())
    assert info["scheme"] == "groups" and info["test_speakers"] == ["09", "10", "11", "12"]
    assert info["valid_speakers"] == ["13", "14"] and info["num_test"] == 12
    test = (out / "3" / "test.list").read_text().split()
    assert len(test) == 12 and all(u.split("-")[-1] in {"09", "10", "11", "12"} for u in test)


@pytest.mark.parametrize("groups,message", [
    ([{"test": "a b"}, {"test": "b c"}], "tested in more than one fold"),
    ([{"test": "a b"}], "speaker\\(s\\) c, d are never tested"),
    ([{"test": "a b", "valid": "b"}, {"test": "c d"}], "group 1 validates on its test speaker"),
    ([{"test": "a b x"}, {"test": "c d"}], "speaker 'x' is not in the data"),
])
def test_bad_groups_are_refused(tmp_path, groups, message):
    conf = tmp_path / "folds.yaml"
    conf.write_text(yaml.safe_dump({"groups": groups}))
    utt2spk = {f"{s}-u{k}": s for s in "abcd" for k in range(2)}
    with pytest.raises(SerError, match=message):
        make_group_folds(utt2spk, read_groups_file(str(conf)), str(conf))


def test_pairs_conf_keeps_leave_one_speaker_out(tmp_path):
    conf = os.path.join(REPO, "egs", "emodb", "conf", "folds.yaml")
    assert folds_scheme(conf) == "loso"
