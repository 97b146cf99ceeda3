"""Tests a mutation check showed missing (issue 15): a leak through an augmented copy's speaker,
model selection by validation UAR (not WA), EmoDB's whole letter -> emotion map and class counts.
(The stage-guard boundaries are in test_hardening_recipe.py.)"""
import importlib.util
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from test_folds import make_data, make_sp_dir
from test_training import run_trainer, small_config
from training_toy import make_aug_dir, make_corpus, write_table
from ser.bin import make_folds
from ser.data.fold_check import check_folds
from ser.errors import SerError
from ser.training import trainer as trainer_module
from ser.training.dataset import load_fold, prepare
from ser.training.model_io import read_model_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_check_folds_catches_a_copy_whose_speaker_is_held_out(tmp_path):
    data, utt2spk = make_data(str(tmp_path))
    out = str(tmp_path / "folds")
    make_folds.main([data, out])                      # fold 1 tests on 03, validates on 08
    good = make_sp_dir(str(tmp_path), utt2spk)
    assert check_folds(out, data, [good]) == 4
    # a copy named so that its id reveals nothing, utt2uniq naming a training utterance (09-u1) of
    # fold 1, but its speaker is the test speaker's copy: only the speaker route catches it
    bad = os.path.join(str(tmp_path), "bad")
    os.makedirs(bad)
    write_table(os.path.join(bad, "utt2spk"), {"sp1.1-x9": "sp1.1-03"})
    write_table(os.path.join(bad, "utt2uniq"), {"sp1.1-x9": "09-u1"})
    with pytest.raises(SerError, match=r"fold 1: augmented utterance 'sp1.1-x9' of test speaker '03'"):
        check_folds(out, data, [bad])


def test_load_fold_refuses_a_copy_whose_speaker_is_held_out(tmp_path):
    corpus = make_corpus(str(tmp_path))
    train = corpus["lists"]["train"]
    d, _ = make_aug_dir(str(tmp_path), "aug", corpus, train[:2])
    # one more copy: its id reveals nothing, utt2uniq names a training utterance, its speaker is
    # the test speaker s4's copy
    write_table(os.path.join(d, "utt2uniq"), {f"sp1.1-{train[0]}": train[0], f"sp1.1-{train[1]}": train[1],
                                              "sp1.1-zz": train[2]})
    write_table(os.path.join(d, "utt2spk"), {f"sp1.1-{train[0]}": "sp1.1-s1", f"sp1.1-{train[1]}": "sp1.1-s1",
                                             "sp1.1-zz": "sp1.1-s4"})
    import kaldiio
    mats = {u: m for u, m in kaldiio.load_scp(os.path.join(d, "feats.scp")).items()}
    mats["sp1.1-zz"] = corpus["mats"][train[2]]
    from training_toy import write_feats
    write_feats(d, mats)
    for policy in ("refuse", "select"):
        with pytest.raises(SerError, match=r"sp1.1-zz.*speaker 's4'"):
            load_fold(corpus["data"], corpus["fold"], corpus["classes"], [d], aug_policy=policy)


def test_best_epoch_is_the_argmax_of_uar_not_of_wa(tmp_path, monkeypatch):
    corpus = make_corpus(str(tmp_path / "c"))
    valid = corpus["lists"]["valid"]
    # a strongly imbalanced validation set: 7 anger, 1 neutral
    emo = {u: ["anger", "neutral", "sadness"][c] for u, c in corpus["labels"].items()}
    for i, u in enumerate(valid):
        emo[u] = "neutral" if i == 0 else "anger"
    write_table(os.path.join(corpus["data"], "utt2emo"), emo)
    prep = prepare(load_fold(corpus["data"], corpus["fold"], corpus["classes"]), 64, 32)
    # scripted predictions per validation: epoch 1 and 3 say anger for everything (WA 7/8, UAR
    # 1/2), epoch 2 gets neutral and 4 of 7 anger right (WA 5/8, UAR 11/14)
    calls = []

    def scripted(model, segs, *args, **kwargs):
        calls.append(1)
        epoch = len(calls)
        out = {}
        for u in segs:
            pred = 0
            if epoch == 2:
                pred = 1 if emo[u] == "neutral" or valid.index(u) > 4 else 0
            p = np.full(3, 0.05)
            p[pred] = 0.9
            out[u] = p
        return out

    monkeypatch.setattr(trainer_module, "posteriors_of_segment_sets", scripted)
    cfg = small_config(max_epochs=3, mixup={"enabled": False, "alpha": 0.4},
                       plateau={"patience": 5, "factor": 0.5})
    result = run_trainer(tmp_path / "out", prep, cfg)
    assert len(calls) == 3
    assert result["best_epoch"] == 2 and abs(result["valid_uar"] - 11 / 14) < 1e-6
    assert read_model_file(str(tmp_path / "out" / "model.pt"))["meta"]["best_epoch"] == 2
    assert "best_epoch 2 " in open(tmp_path / "out" / "done").read()


def load_prepare_emodb():
    path = os.path.join(REPO, "egs", "emodb", "local", "prepare_emodb.py")
    spec = importlib.util.spec_from_file_location("prepare_emodb", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_emodb_letter_to_emotion_map_is_complete_and_right(tmp_path, emodb_dir):
    # Burkhardt et al. 2005: W Wut, L Langeweile, E Ekel, A Angst, F Freude, T Trauer, N neutral
    expected = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness",
                "T": "sadness", "N": "neutral"}
    src = {f.name[5]: f for f in sorted((emodb_dir / "wav").iterdir())}
    wav = tmp_path / "corpus" / "wav"
    wav.mkdir(parents=True)
    for letter in expected:   # one file per letter, named as the corpus names it
        (wav / src[letter].name).symlink_to(src[letter])
    out = tmp_path / "data"
    r = subprocess.run([sys.executable, os.path.join(REPO, "egs", "emodb", "local", "prepare_emodb.py"),
                        str(tmp_path / "corpus"), str(out)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    utt2emo = dict(l.split() for l in open(out / "utt2emo"))
    assert {u.split("-")[1][5]: e for u, e in utt2emo.items()} == expected


def test_emodb_shared_copy_per_emotion_counts(tmp_path, emodb_dir):
    out = tmp_path / "data"
    r = subprocess.run([sys.executable, os.path.join(REPO, "egs", "emodb", "local", "prepare_emodb.py"),
                        str(emodb_dir), str(out)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    counts = Counter(l.split()[1] for l in open(out / "utt2emo"))
    # the official release: 535 utterances
    assert counts == {"anger": 127, "boredom": 81, "disgust": 46, "fear": 69, "happiness": 71,
                      "neutral": 79, "sadness": 62}
