"""RAVDESS data preparation (egs/ravdess/local/data.sh) on the shared copy and on small corpora
of symlinks to it. Expected values are computed here from the file names."""
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO, copy_recipe
from corpus_fixtures import read_table

RECIPE = REPO / "egs" / "ravdess"
EMO = {"01": "neutral", "02": "calm", "03": "happiness", "04": "sadness", "05": "anger",
       "06": "fear", "07": "disgust", "08": "surprise"}
TEXT = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}


@pytest.fixture(scope="session")
def ravdess_dir(shared_data):
    return shared_data / "ravdess"


def prepare(env, corpus, out, *opts):
    return subprocess.run(["local/data.sh", *opts, str(corpus), str(out)], cwd=RECIPE, env=env,
                          capture_output=True, text=True)


def fake_ravdess(src, dest, actors, extra=()):
    """A RAVDESS root in `dest` linking the files of `actors` from the real copy; `extra`: more
    (actor folder, file name) links to the first file of Actor_01."""
    dest = Path(dest)
    for a in actors:
        d = dest / f"Actor_{a}"
        d.mkdir(parents=True)
        for f in sorted((Path(src) / f"Actor_{a}").iterdir()):
            (d / f.name).symlink_to(f)
    any_file = sorted((Path(src) / "Actor_01").iterdir())[0]
    for folder, name in extra:
        (dest / folder).mkdir(parents=True, exist_ok=True)
        (dest / folder / name).symlink_to(any_file)
    return dest


def expected(names):
    """utt -> (speaker, emotion, text) from file names, computed independently."""
    out = {}
    for n in names:
        f = n[:-4].split("-")
        out[f"{f[6]}-{n[:-4]}"] = (f[6], EMO[f[2]], TEXT[f[4]])
    return out


def test_two_actors_speakers_emotions_texts_and_counts(tmp_path, ravdess_dir, script_env):
    corpus = fake_ravdess(ravdess_dir, tmp_path / "corpus", ("01", "02"))
    names = [p.name for a in ("01", "02") for p in (corpus / f"Actor_{a}").iterdir()]
    r = prepare(script_env, corpus, tmp_path / "all")
    assert r.returncode == 0, r.stderr
    d = tmp_path / "all"
    assert not (tmp_path / "all.tmp").exists()
    exp = expected(names)
    assert len(exp) == 58 + 60  # Actor_01 lacks two files in the shared copy
    utt2spk, utt2emo, text = (read_table(d / n) for n in ("utt2spk", "utt2emo", "text"))
    assert utt2spk == {u: v[0] for u, v in exp.items()}
    assert utt2emo == {u: v[1] for u, v in exp.items()}
    assert text == {u: v[2] for u, v in exp.items()}
    assert list(utt2spk) == sorted(utt2spk)
    assert read_table(d / "spk2gender") == {"01": "m", "02": "f"}
    assert read_table(d / "spk2utt")["02"].split() == sorted(u for u in exp if u.startswith("02-"))
    wav = read_table(d / "wav.scp")["01-03-01-05-01-01-01-01"]
    assert wav == str(corpus / "Actor_01" / "03-01-05-01-01-01-01.wav")
    durs = {float(v) for v in read_table(d / "utt2dur").values()}
    assert all(abs(x - 2.39) < 0.01 for x in durs)  # the 2.39 s copy
    assert "118 utterances, 2 speakers, 8 emotions" in r.stdout


def test_four_class_drops_calm_and_the_other_emotions(tmp_path, ravdess_dir, script_env):
    corpus = fake_ravdess(ravdess_dir, tmp_path / "corpus", ("01", "02"))
    names = [p.name for a in ("01", "02") for p in (corpus / f"Actor_{a}").iterdir()]
    r = prepare(script_env, corpus, tmp_path / "all4", "--four-class", "true")
    assert r.returncode == 0, r.stderr
    exp = {u: v for u, v in expected(names).items() if v[1] in ("neutral", "happiness", "anger", "sadness")}
    utt2emo = read_table(tmp_path / "all4" / "utt2emo")
    assert utt2emo == {u: v[1] for u, v in exp.items()}
    counts = Counter(utt2emo.values())
    assert counts["neutral"] == 8 and "calm" not in counts  # 2 actors x 2 statements x 2 repetitions
    assert read_table(tmp_path / "all4" / "spk2gender") == {"01": "m", "02": "f"}


def test_full_shared_copy(tmp_path, ravdess_dir, script_env):
    r = prepare(script_env, ravdess_dir, tmp_path / "all")
    assert r.returncode == 0, r.stderr
    utt2spk = read_table(tmp_path / "all" / "utt2spk")
    assert len(utt2spk) == 1434 and len(set(utt2spk.values())) == 24
    names = [p.name for p in ravdess_dir.glob("Actor_*/*.wav")]
    assert Counter(read_table(tmp_path / "all" / "utt2emo").values()) == Counter(EMO[n.split("-")[2]] for n in names)
    assert Counter(read_table(tmp_path / "all" / "spk2gender").values()) == {"m": 12, "f": 12}
    assert "1434 speech files" in r.stderr and "1440" in r.stderr  # the warning about the copy


def one_error_line(r):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    return lines[0]


@pytest.mark.parametrize("folder,name,message", [
    ("Actor_01", "03-01-01-01-01-01.wav", "not a RAVDESS file name"),            # 6 fields
    ("Actor_01", "03-01-1-01-01-01-01.wav", "not a RAVDESS file name"),          # 1-digit field
    ("Actor_01", "03-01-09-01-01-01-01.wav", "unknown emotion code '09'"),
    ("Actor_01", "03-01-01-01-03-01-01.wav", "unknown statement code '03'"),
    ("Actor_01", "03-01-01-01-01-01-02.wav", "actor field '02' does not match its folder Actor_01"),
])
def test_malformed_name_is_named(tmp_path, ravdess_dir, script_env, folder, name, message):
    corpus = fake_ravdess(ravdess_dir, tmp_path / "corpus", ("02",), extra=[(folder, name)])
    line = one_error_line(prepare(script_env, corpus, tmp_path / "all"))
    assert os.path.join(folder, name) in line and message in line
    assert not (tmp_path / "all").exists()


def test_non_speech_files_are_skipped_and_counted(tmp_path, ravdess_dir, script_env):
    extra = [("Actor_02", "03-02-01-01-01-01-02.wav"),   # song
             ("Actor_02", "01-01-01-01-01-01-02.wav"),   # audio-video
             ("Actor_02", "notes.txt")]                  # not a .wav: ignored
    corpus = fake_ravdess(ravdess_dir, tmp_path / "corpus", ("02",), extra=extra)
    r = prepare(script_env, corpus, tmp_path / "all")
    assert r.returncode == 0, r.stderr
    assert "skipped 2 files" in r.stderr
    assert len(read_table(tmp_path / "all" / "utt2spk")) == 60


def test_missing_or_empty_corpus(tmp_path, script_env):
    line = one_error_line(prepare(script_env, tmp_path / "nowhere", tmp_path / "all"))
    assert "RAVDESS=" in line and "nowhere" in line
    (tmp_path / "empty" / "Actor_01").mkdir(parents=True)
    line = one_error_line(prepare(script_env, tmp_path / "empty", tmp_path / "all"))
    assert "no .wav files" in line
    (tmp_path / "flat").mkdir()
    line = one_error_line(prepare(script_env, tmp_path / "flat", tmp_path / "all"))
    assert "no Actor_XX directories" in line
    assert not (tmp_path / "all").exists()


def test_run_sh_stage_0_and_unset_corpus(tmp_path, ravdess_dir, script_env):
    recipe = copy_recipe("ravdess", tmp_path / "ravdess")
    env = {k: v for k, v in script_env.items() if k != "RAVDESS"}
    r = subprocess.run(["./run.sh", "--stop_stage", "0"], cwd=recipe, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "RAVDESS is not set" in r.stderr
    corpus = fake_ravdess(ravdess_dir, tmp_path / "corpus", ("03",))
    r = subprocess.run(["./run.sh", "--stop_stage", "0", "--four_class", "true"], cwd=recipe,
                       env=dict(env, RAVDESS=str(corpus)), capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert Counter(read_table(recipe / "data" / "all4" / "utt2emo").values()) == \
        {"neutral": 4, "happiness": 8, "sadness": 8, "anger": 8}
