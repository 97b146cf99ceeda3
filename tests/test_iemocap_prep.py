"""egs/iemocap: data preparation on a fixture tree in the official layout, its folds, and run.sh
stages 0 and 2 (the corpus itself is licensed and not available here)."""
import os
import sys

import pytest
import yaml

from conftest import REPO, copy_recipe
from corpus_fixtures import load_script, make_iemocap, read_table, run_in
from ser.errors import SerError

RECIPE = REPO / "egs" / "iemocap"
SPEAKERS = [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"]


def run(cmd, env, cwd=RECIPE):
    return run_in(cwd, cmd, env)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_iemocap(tmp_path_factory.mktemp("iemocap"))


@pytest.fixture(scope="module")
def prep():
    return load_script(RECIPE / "local" / "prepare_iemocap.py", "prepare_iemocap")


@pytest.fixture(scope="module")
def data4(corpus, tmp_path_factory):
    """The 4-class data dir made by local/data.sh, and the run's stdout/stderr."""
    env = dict(os.environ, PATH=os.pathsep.join([str(REPO / "utils"), os.path.dirname(sys.executable),
                                                os.environ.get("PATH", "")]), LC_ALL="C")
    out = tmp_path_factory.mktemp("data") / "all4"
    r = run(["local/data.sh", "--four-class", "true", str(corpus), str(out)], env)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r


def test_four_class_data_dir(data4):
    data, r = data4
    utt2spk = read_table(data / "utt2spk")
    utt2emo = read_table(data / "utt2emo")
    text = read_table(data / "text")
    # 10 per session: 6 of the impro dialog (xxx and fru dropped) ... see corpus_fixtures.py.
    assert len(utt2spk) == 50
    assert sorted(set(utt2spk.values())) == SPEAKERS
    assert list(utt2spk) == sorted(utt2spk, key=lambda u: u.encode())
    assert all(u.startswith(s + "-") for u, s in utt2spk.items())
    counts = {e: list(utt2emo.values()).count(e) for e in set(utt2emo.values())}
    assert counts == {"anger": 10, "happiness": 20, "neutral": 10, "sadness": 10}
    assert utt2emo["Ses01F-Ses01F_impro01_F000"] == "neutral"   # not the Categorical/ or ._ lines
    assert utt2emo["Ses01F-Ses01F_impro01_F001"] == "happiness"  # exc merged
    assert utt2emo["Ses03M-Ses03M_script01_1_M002"] == "happiness"
    assert utt2emo["Ses01M-Ses01F_impro01_M000"] == "anger"  # the line with extra white space
    # The speaker is the gender of the utterance's own id, not of the dialog's.
    assert utt2spk["Ses02F-Ses02M_script01_1_F001"] == "Ses02F"
    assert utt2spk["Ses02M-Ses02F_impro01_M001"] == "Ses02M"
    for s in range(1, 6):
        assert f"Ses0{s}F-Ses0{s}F_impro01_F002" not in utt2spk   # xxx
        assert f"Ses0{s}M-Ses0{s}F_impro01_M002" not in utt2spk   # fru
    assert "Ses01M-Ses01F_impro01_M003" not in utt2spk            # no audio
    assert text["Ses01F-Ses01F_impro01_F000"] == "Excuse me."
    assert text["Ses01M-Ses01F_impro01_M000"] == "Do you have your forms?"
    assert text["Ses01M-Ses01M_script01_1_M001"] == "<unk>"
    assert text["Ses04F-Ses04M_script01_1_F002"] == "Line 4 of Ses04M_script01_1_F002."
    wav = read_table(data / "wav.scp")
    assert wav["Ses05M-Ses05F_impro01_M001"].endswith(
        "Session5/sentences/wav/Ses05F_impro01/Ses05F_impro01_M001.wav")
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in wav.values())
    assert set(read_table(data / "utt2dur").values()) == {"0.3000"}
    assert read_table(data / "spk2gender") == {s: s[-1].lower() for s in SPEAKERS}
    assert not os.path.exists(str(data) + ".tmp")


def test_warnings_are_one_line_each(data4):
    _, r = data4
    lines = r.stderr.strip().splitlines()
    loud = [line for line in lines if "WARNING" in line]
    assert len(loud) == 1
    assert "51 labelled utterances" in loud[0] and "5531" in loud[0] and "IEMOCAP=" in loud[0]
    missing = [line for line in lines if "no usable audio" in line]
    assert len(missing) == 1 and "1 labelled utterances" in missing[0]
    assert "Ses01F_impro01/Ses01F_impro01_M003.wav: missing" in missing[0]
    assert len(lines) == 2


def test_all_classes_keep_excitement_and_frustration(corpus, prep, tmp_path, capsys):
    assert prep.main([str(corpus), str(tmp_path / "all")]) == 0
    utt2emo = read_table(tmp_path / "all" / "utt2emo")
    assert len(utt2emo) == 55
    assert utt2emo["Ses01F-Ses01F_impro01_F001"] == "excitement"
    assert utt2emo["Ses01F-Ses01M_script01_1_F000"] == "happiness"
    assert utt2emo["Ses02M-Ses02F_impro01_M002"] == "frustration"
    assert not any(u.endswith("_F002") and "impro" in u for u in utt2emo)  # xxx
    err = capsys.readouterr().err
    assert "WARNING: 56 labelled utterances" in err and "7532" in err


def test_count_matching_the_release_gives_no_warning(corpus, prep, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(prep, "EXPECTED_FOUR", {"anger": 10, "happiness": 20, "neutral": 11, "sadness": 10})
    assert prep.main(["--four-class", "true", str(corpus), str(tmp_path / "d")]) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_improvised_only_from_option_and_from_data_conf(corpus, tmp_path, script_env):
    r = run(["local/data.sh", "--four-class", "true", "--improvised-only", "true", str(corpus),
             str(tmp_path / "impro")], script_env)
    assert r.returncode == 0, r.stderr
    utts = read_table(tmp_path / "impro" / "utt2emo")
    assert len(utts) == 20 and all("_impro01_" in u for u in utts)
    assert "WARNING" not in r.stderr  # the release count is only known for both dialog types

    recipe = copy_recipe("iemocap", tmp_path / "recipe")
    conf = recipe / "local" / "data.conf"
    conf.write_text(conf.read_text().replace("improvised_only=false", "improvised_only=true"))
    r = run(["local/data.sh", "--four-class", "true", str(corpus), str(tmp_path / "impro2")],
            script_env, cwd=recipe)
    assert r.returncode == 0, r.stderr
    assert read_table(tmp_path / "impro2" / "utt2emo") == utts


@pytest.mark.parametrize("case", ["nowhere", "no_session3"])
def test_wrong_root_is_a_one_line_error(corpus, tmp_path, script_env, case):
    root = tmp_path / "nowhere"
    if case == "no_session3":
        root = make_iemocap(tmp_path, sessions=(1, 2, 4, 5))
    out = tmp_path / "data"
    r = run(["local/data.sh", str(root), str(out)], script_env)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert f"IEMOCAP={root}" in err[0] and "IEMOCAP_full_release" in err[0]
    if case == "no_session3":
        assert "Session3/dialog/EmoEvaluation" in err[0] and "Session4" not in err[0]
    assert not out.exists() and not (tmp_path / "data.tmp").exists()


def test_leave_one_speaker_out_folds_with_session_partners(data4, tmp_path, script_env):
    data, _ = data4
    folds = tmp_path / "folds"
    r = run([sys.executable, "-m", "ser.bin.make_folds", "--scheme", "loso", "--valid", "pair",
             "--pairs-file", "conf/folds.yaml", str(data), str(folds)], script_env)
    assert r.returncode == 0, r.stderr
    assert (folds / "classes.txt").read_text() == "anger\nhappiness\nneutral\nsadness\n"
    utt2spk = read_table(data / "utt2spk")
    for k, spk in enumerate(SPEAKERS, 1):
        info = yaml.safe_load((folds / str(k) / "info.yaml").read_text())
        partner = spk[:-1] + ("M" if spk[-1] == "F" else "F")
        assert info["test_speakers"] == [spk] and info["valid_speakers"] == [partner]
        test = (folds / str(k) / "test.list").read_text().split()
        valid = (folds / str(k) / "valid.list").read_text().split()
        train = (folds / str(k) / "train.list").read_text().split()
        assert test == sorted(u for u, s in utt2spk.items() if s == spk)
        assert valid == sorted(u for u, s in utt2spk.items() if s == partner)
        assert len(train) == 40 and not {utt2spk[u] for u in train} & {spk, partner}
    r = run([sys.executable, "-m", "ser.bin.check_folds", str(folds), "--data", str(data)], script_env)
    assert r.returncode == 0, r.stderr


def test_leave_one_session_out_folds(data4, tmp_path, script_env):
    data, _ = data4
    folds = tmp_path / "sfolds"
    cmd = ["local/make_session_folds.py", str(data), str(folds)]
    r = run(cmd, script_env)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(folds)) == ["1", "2", "3", "4", "5", "classes.txt", "folds.tsv"]
    utt2spk = read_table(data / "utt2spk")
    tested = []
    for k in range(1, 6):
        info = yaml.safe_load((folds / str(k) / "info.yaml").read_text())
        nxt = k % 5 + 1
        assert info["test_speakers"] == [f"Ses0{k}F", f"Ses0{k}M"]
        assert info["valid_speakers"] == [f"Ses0{nxt}F", f"Ses0{nxt}M"]
        assert info["scheme"] == "leave_one_session_out" and info["valid_method"] == "next_session"
        assert len(info["train_speakers"]) == 6
        test = (folds / str(k) / "test.list").read_text().split()
        train = (folds / str(k) / "train.list").read_text().split()
        assert {utt2spk[u] for u in test} == {f"Ses0{k}F", f"Ses0{k}M"} and len(test) == 10
        assert len(train) == 30 and not {utt2spk[u][:5] for u in train} & {f"Ses0{k}", f"Ses0{nxt}"}
        tested += test
    assert sorted(tested) == sorted(utt2spk)
    r = run([sys.executable, "-m", "ser.bin.check_folds", str(folds), "--data", str(data)], script_env)
    assert r.returncode == 0, r.stderr
    r = run(cmd, script_env)
    assert r.returncode == 0 and "unchanged:" in r.stdout


def test_run_sh_stage_0_and_2(corpus, tmp_path, script_env):
    recipe = copy_recipe("iemocap", tmp_path / "iemocap")
    env = dict(script_env, IEMOCAP=str(corpus))
    r = run(["./run.sh", "--stop_stage", "0", "--four_class", "true"], env, cwd=recipe)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(read_table(recipe / "data" / "all4" / "utt2spk")) == 50
    r = run(["./run.sh", "--stage", "2", "--stop_stage", "2", "--four_class", "true"], env, cwd=recipe)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = (recipe / "data" / "all4_folds" / "folds.tsv").read_text().splitlines()
    assert len(rows) == 11 and rows[6].split("\t")[1:3] == ["Ses03M", "Ses03F"]

    r = run(["./run.sh", "--stop_stage", "0"], dict(script_env, IEMOCAP=str(tmp_path / "nowhere")),
            cwd=recipe)
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0 and len(err) == 1 and f"IEMOCAP={tmp_path / 'nowhere'}" in err[0]


def test_unknown_utterance_id_is_skipped_with_a_warning(corpus, prep, tmp_path, capsys):
    import shutil

    root = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(corpus, root, symlinks=True)
    evals = root / "Session2" / "dialog" / "EmoEvaluation" / "Ses02F_impro01.txt"
    evals.write_text(evals.read_text() + "\n[1.0000 - 2.0000]\tSes02F_impro01_XX1\tang\t[1.0, 1.0, 1.0]\n")
    assert prep.main(["--four-class", "true", str(root), str(tmp_path / "d")]) == 0
    err = capsys.readouterr().err
    assert "1 label lines skipped" in err and "Ses02F_impro01.txt" in err and "Ses02F_impro01_XX1" in err
    with pytest.raises(SerError, match="IEMOCAP="):
        prep.main([str(tmp_path / "none"), str(tmp_path / "d2")])
