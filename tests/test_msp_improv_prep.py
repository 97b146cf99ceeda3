"""egs/msp_improv: data preparation on a fixture tree in the official layout (Evalution.txt,
Audio/sessionN/...), and its leave-one-speaker-out folds with session partners."""
import os
import shutil
import sys

import pytest
import yaml

from conftest import REPO
from corpus_fixtures import load_script, make_msp_improv, read_table, run_in
from ser.errors import SerError

RECIPE = REPO / "egs" / "msp_improv"
SPEAKERS = [f"{g}0{n}" for g in "FM" for n in range(1, 7)]


def run(cmd, env):
    return run_in(RECIPE, cmd, env)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_msp_improv(tmp_path_factory.mktemp("msp"))


@pytest.fixture(scope="module")
def prep():
    return load_script(RECIPE / "local" / "prepare_msp_improv.py", "prepare_msp_improv")


def test_data_dir(corpus, tmp_path, script_env):
    out = tmp_path / "all"
    r = run(["local/data.sh", str(corpus), str(out)], script_env)
    assert r.returncode == 0, r.stdout + r.stderr
    utt2spk = read_table(out / "utt2spk")
    utt2emo = read_table(out / "utt2emo")
    assert len(utt2spk) == 48
    assert sorted(set(utt2spk.values())) == sorted(SPEAKERS)
    assert all(u.startswith(s + "-MSP-IMPROV-") for u, s in utt2spk.items())
    assert utt2emo["F01-MSP-IMPROV-S01A-F01-T-FM01"] == "anger"
    assert utt2emo["M03-MSP-IMPROV-S01A-M03-R-MF01"] == "happiness"
    assert utt2emo["F01-MSP-IMPROV-S02H-F01-S-FM01"] == "neutral"  # line with extra white space
    assert utt2emo["M01-MSP-IMPROV-S02H-M01-P-MF01"] == "sadness"  # NaN dimensional values
    assert utt2spk["M06-MSP-IMPROV-S02H-M06-P-MF01"] == "M06"
    assert not any("-S03S-" in u for u in utt2spk)                 # X and O dropped
    assert "F01-MSP-IMPROV-S04N-F01-P-FM03" not in utt2spk         # no audio
    assert {e: list(utt2emo.values()).count(e) for e in set(utt2emo.values())} == \
        {"anger": 12, "happiness": 12, "neutral": 12, "sadness": 12}
    assert set(read_table(out / "text").values()) == {"<unk>"}
    wav = read_table(out / "wav.scp")
    assert wav["F04-MSP-IMPROV-S02H-F04-S-FM01"].endswith("Audio/session4/S02H/S/MSP-IMPROV-S02H-F04-S-FM01.wav")
    assert read_table(out / "spk2gender") == {s: s[0].lower() for s in SPEAKERS}
    assert set(read_table(out / "utt2dur").values()) == {"0.3000"}
    err = r.stderr.strip().splitlines()
    assert len(err) == 2
    assert "WARNING: 49 labelled utterances" in err[0] and "7798" in err[0] and "MSP_IMPROV=" in err[0]
    assert "1 labelled utterances skipped: no usable audio" in err[1]
    assert "MSP-IMPROV-S04N-F01-P-FM03.wav: missing" in err[1]
    # --four-class true: the same 4 classes
    r = run(["local/data.sh", "--four-class", "true", str(corpus), str(tmp_path / "all4")], script_env)
    assert r.returncode == 0 and read_table(tmp_path / "all4" / "utt2emo") == utt2emo


def test_evaluation_txt_spelling_and_target_sentences(corpus, prep, tmp_path, capsys):
    root = tmp_path / "MSP-IMPROV"
    shutil.copytree(corpus, root)
    (root / "Evalution.txt").rename(root / "Evaluation.txt")
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("S01 The first target sentence.\nS02 The second one.\n")
    assert prep.main(["--sentences", str(sentences), str(root), str(tmp_path / "d")]) == 0
    assert "Evaluation.txt" in capsys.readouterr().out
    text = read_table(tmp_path / "d" / "text")
    assert len(text) == 48
    assert text["F02-MSP-IMPROV-S01A-F02-T-FM01"] == "The first target sentence."  # target
    assert text["M02-MSP-IMPROV-S01A-M02-R-MF01"] == "The first target sentence."  # read
    assert text["F02-MSP-IMPROV-S02H-F02-S-FM01"] == "<unk>"  # other improvised turns
    assert text["F02-MSP-IMPROV-S02H-F02-P-FM01"] == "<unk>"  # natural interaction


def test_count_matching_the_release_gives_no_warning(corpus, prep, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(prep, "EXPECTED", {"anger": 12, "happiness": 12, "neutral": 13, "sadness": 12})
    assert prep.main([str(corpus), str(tmp_path / "d")]) == 0
    assert "WARNING" not in capsys.readouterr().err


@pytest.mark.parametrize("case,needle", [("nowhere", "no such directory"),
                                         ("no_labels", "no label file Evalution.txt"),
                                         ("no_audio", "no Audio/ directory")])
def test_wrong_root_is_a_one_line_error(corpus, tmp_path, script_env, case, needle):
    root = tmp_path / "root"
    if case != "nowhere":
        shutil.copytree(corpus, root)
        if case == "no_labels":
            (root / "Evalution.txt").unlink()
        else:
            shutil.rmtree(root / "Audio")
    r = run(["local/data.sh", str(root), str(tmp_path / "data")], script_env)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and f"MSP_IMPROV={root}" in err[0] and needle in err[0], r.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "data.tmp").exists()


def test_no_label_lines_is_an_error(corpus, prep, tmp_path):
    root = tmp_path / "MSP-IMPROV"
    shutil.copytree(corpus, root)
    (root / "Evalution.txt").write_text("rater-p01; Neutral; ; A:3.0; V:3.0; D:3.0; N:4.0;\n")
    with pytest.raises(SerError, match="Evalution.txt: no consensus label lines"):
        prep.main([str(root), str(tmp_path / "d")])


def test_folds_pair_session_partners(corpus, tmp_path, script_env):
    data, folds = tmp_path / "all", tmp_path / "folds"
    assert run(["local/data.sh", str(corpus), str(data)], script_env).returncode == 0
    r = run([sys.executable, "-m", "ser.bin.make_folds", "--scheme", "loso", "--valid", "pair",
             "--pairs-file", "conf/folds.yaml", str(data), str(folds)], script_env)
    assert r.returncode == 0, r.stderr
    utt2spk = read_table(data / "utt2spk")
    for k, spk in enumerate(sorted(SPEAKERS), 1):  # F01..F06 M01..M06
        info = yaml.safe_load((folds / str(k) / "info.yaml").read_text())
        partner = ("M" if spk[0] == "F" else "F") + spk[1:]
        assert info["test_speakers"] == [spk] and info["valid_speakers"] == [partner]
        assert info["num_train"] == 40 and info["num_test"] == 4
        test = (folds / str(k) / "test.list").read_text().split()
        assert {utt2spk[u] for u in test} == {spk}
    r = run([sys.executable, "-m", "ser.bin.check_folds", str(folds), "--data", str(data)], script_env)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(folds / "classes.txt")
