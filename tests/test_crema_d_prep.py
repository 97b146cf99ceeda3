"""egs/crema_d: data preparation on a fixture tree in the official layout (AudioWAV/, the CSV
files), and the speaker-independent actor folds of local/make_actor_folds.py."""
import shutil
import sys

import pytest
import yaml

from conftest import REPO
from corpus_fixtures import CREMA_FEMALE, CREMA_MALE, load_script, make_crema_d, read_table, run_in
from ser.errors import SerError

RECIPE = REPO / "egs" / "crema_d"
ACTORS = sorted(CREMA_MALE + CREMA_FEMALE)


def run(cmd, env):
    return run_in(RECIPE, cmd, env)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_crema_d(tmp_path_factory.mktemp("crema"))


@pytest.fixture(scope="module")
def prep():
    return load_script(RECIPE / "local" / "prepare_crema_d.py", "prepare_crema_d")


def test_four_class_data_dir(corpus, tmp_path, script_env):
    out = tmp_path / "all4"
    r = run(["local/data.sh", "--four-class", "true", str(corpus), str(out)], script_env)
    assert r.returncode == 0, r.stdout + r.stderr
    utt2spk = read_table(out / "utt2spk")
    utt2emo = read_table(out / "utt2emo")
    text = read_table(out / "text")
    # 6 clips of the 4 classes per actor, less 1076_MTI_SAD_XX (local/exclude.txt).
    assert len(utt2spk) == 59
    assert sorted(set(utt2spk.values())) == ACTORS
    assert all(u == f"{s}-{u[5:]}" and u[5:9] == s for u, s in utt2spk.items())
    assert set(utt2emo.values()) == {"anger", "happiness", "neutral", "sadness"}
    assert utt2emo["1001-1001_DFA_ANG_XX"] == "anger" and utt2emo["1012-1012_IEO_SAD_LO"] == "sadness"
    assert utt2emo["1040-1040_ITH_SAD_X"] == "sadness"       # the misnamed release file
    assert text["1040-1040_ITH_SAD_X"] == "I think I have a doctor's appointment."
    assert text["1002-1002_DFA_HAP_XX"] == "Don't forget a jacket."
    assert text["1002-1002_IEO_ANG_HI"] == "It's eleven o'clock."
    assert "1076-1076_MTI_SAD_XX" not in utt2spk and "1001-1001_DFA_DIS_XX" not in utt2spk
    assert read_table(out / "spk2gender") == {a: "m" if a in CREMA_MALE else "f" for a in ACTORS}
    assert read_table(out / "wav.scp")["1013-1013_DFA_NEU_XX"] == str(corpus / "AudioWAV" / "1013_DFA_NEU_XX.wav")
    assert "left out 1 clips" in r.stdout and "1076_MTI_SAD_XX" in r.stdout
    err = r.stderr.strip().splitlines()
    assert len([line for line in err if "WARNING" in line]) == 1
    loud = next(line for line in err if "WARNING" in line)
    assert "60 clips" in loud and "4900" in loud and "CREMA_D=" in loud
    assert any("1 files in AudioWAV/ skipped" in line and "(copy).wav" in line for line in err)
    assert any("SentenceFilenames.csv have no AudioWAV/ file (1002_TIE_NEU_XX)" in line for line in err)
    assert any("10 actors in AudioWAV/, the release has 91" in line for line in err)
    assert len(err) == 4
    assert not (tmp_path / "all4.tmp").exists()


def test_six_classes_skip_empty_audio(corpus, prep, tmp_path, capsys):
    assert prep.main([str(corpus), str(tmp_path / "all")]) == 0
    utt2emo = read_table(tmp_path / "all" / "utt2emo")
    assert len(utt2emo) == 78  # 80 clips, less the excluded one and the empty one
    assert "1003-1003_DFA_FEA_XX" not in utt2emo
    assert utt2emo["1002-1002_DFA_DIS_XX"] == "disgust" and utt2emo["1003-1003_DFA_HAP_XX"] == "happiness"
    err = capsys.readouterr().err
    assert "1 clips skipped: no usable audio" in err and "1003_DFA_FEA_XX.wav: empty" in err
    assert "80 clips" in err and "7442" in err
    # --exclude none keeps the clip local/exclude.txt names
    assert prep.main(["--exclude", "none", str(corpus), str(tmp_path / "keep")]) == 0
    assert read_table(tmp_path / "keep" / "utt2emo")["1076-1076_MTI_SAD_XX"] == "sadness"


def test_count_matching_the_release_gives_no_warning(corpus, prep, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(prep, "EXPECTED", {"anger": 20, "disgust": 10, "fear": 10, "happiness": 10,
                                           "neutral": 10, "sadness": 20})
    assert prep.main([str(corpus), str(tmp_path / "d")]) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_git_lfs_pointers_and_wrong_root_are_one_line_errors(corpus, tmp_path, script_env):
    root = tmp_path / "CREMA-D"
    shutil.copytree(corpus, root)
    (root / "AudioWAV" / "1002_DFA_ANG_XX.wav").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 33000\n")
    r = run(["local/data.sh", str(root), str(tmp_path / "data")], script_env)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 1 and "git-lfs pointer" in err[-1] and "1002_DFA_ANG_XX.wav" in err[-1]
    assert not (tmp_path / "data").exists() and not (tmp_path / "data.tmp").exists()

    shutil.rmtree(root / "AudioWAV")
    r = run(["local/data.sh", str(root), str(tmp_path / "data")], script_env)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(err) == 1
    assert f"CREMA_D={root}" in err[0] and "no AudioWAV/" in err[0]


def test_without_demographics_no_spk2gender(corpus, prep, tmp_path, capsys):
    root = tmp_path / "CREMA-D"
    shutil.copytree(corpus, root)
    (root / "VideoDemographics.csv").unlink()
    assert prep.main(["--four-class", "true", str(root), str(tmp_path / "d")]) == 0
    assert not (tmp_path / "d" / "spk2gender").exists()
    assert "VideoDemographics.csv: no spk2gender" in capsys.readouterr().err


def read_fold(folds, k):
    info = yaml.safe_load((folds / str(k) / "info.yaml").read_text())
    lists = {n: (folds / str(k) / f"{n}.list").read_text().split() for n in ("train", "valid", "test")}
    return info, lists


def test_actor_folds_are_speaker_independent_and_gender_balanced(corpus, tmp_path, script_env):
    data, folds = tmp_path / "all4", tmp_path / "folds"
    assert run(["local/data.sh", "--four-class", "true", str(corpus), str(data)], script_env).returncode == 0
    # conf/folds.yaml asks for 8 validation actors: too many for 10 actors in 5 folds.
    r = run(["local/make_actor_folds.py", str(data), str(folds)], script_env)
    assert r.returncode == 1 and "--num-valid-actors 8 leaves no training actor" in r.stderr
    cmd = ["local/make_actor_folds.py", "--num-valid-actors", "2", str(data), str(folds)]
    r = run(cmd, script_env)
    assert r.returncode == 0, r.stderr
    utt2spk = read_table(data / "utt2spk")
    tested = []
    for k in range(1, 6):
        info, lists = read_fold(folds, k)
        test_spks, valid_spks = info["test_speakers"], info["valid_speakers"]
        assert info["scheme"] == "actor_kfold" and info["seed"] == 1 and info["num_folds"] == 5
        assert sum(a in CREMA_MALE for a in test_spks) == 1 and len(test_spks) == 2
        assert sum(a in CREMA_MALE for a in valid_spks) == 1 and len(valid_spks) == 2
        assert not set(test_spks) & set(valid_spks)
        assert sorted(test_spks + valid_spks + info["train_speakers"]) == ACTORS
        for part, spks in (("test", test_spks), ("valid", valid_spks), ("train", info["train_speakers"])):
            assert lists[part] == sorted(u for u, s in utt2spk.items() if s in spks)
        tested += test_spks
    assert sorted(tested) == ACTORS  # every actor tested exactly once
    assert (folds / "classes.txt").read_text() == "anger\nhappiness\nneutral\nsadness\n"
    r = run([sys.executable, "-m", "ser.bin.check_folds", str(folds), "--data", str(data)], script_env)
    assert r.returncode == 0, r.stderr
    tsv = (folds / "folds.tsv").read_text()
    r = run(cmd, script_env)
    assert r.returncode == 0 and "unchanged:" in r.stdout  # reproducible
    r = run(cmd[:1] + ["--seed", "2"] + cmd[1:], script_env)
    assert r.returncode == 0 and (folds / "folds.tsv").read_text() != tsv


def test_actor_folds_without_genders(corpus, tmp_path, script_env):
    data, folds = tmp_path / "all4", tmp_path / "folds"
    assert run(["local/data.sh", "--four-class", "true", str(corpus), str(data)], script_env).returncode == 0
    (data / "spk2gender").unlink()
    r = run(["local/make_actor_folds.py", "--num-folds", "3", "--num-valid-actors", "1",
             str(data), str(folds)], script_env)
    assert r.returncode == 0, r.stderr
    assert "not gender-balanced" in r.stdout
    sizes = sorted(len(read_fold(folds, k)[0]["test_speakers"]) for k in (1, 2, 3))
    assert sizes == [3, 3, 4]


def test_make_folds_refuses_the_actor_fold_config(corpus, tmp_path, script_env, prep):
    assert prep.main(["--four-class", "true", str(corpus), str(tmp_path / "d")]) == 0
    r = run([sys.executable, "-m", "ser.bin.make_folds", "--pairs-file", "conf/folds.yaml",
             str(tmp_path / "d"), str(tmp_path / "f")], script_env)
    assert r.returncode == 1 and "conf/folds.yaml: no 'pairs' list" in r.stderr
    with pytest.raises(SerError, match="CREMA_D="):
        prep.main([str(tmp_path / "nowhere"), str(tmp_path / "x")])
