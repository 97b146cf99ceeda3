"""The fold directory format (ser.data.fold_dir): list, info.yaml and folds-tree reading and writing."""
import os

import pytest

from ser.data.fold_dir import (fold_numbers, info_speakers, read_fold_dirs, read_fold_lists, read_info,
                               read_utt_list, write_folds)
from ser.errors import SerError

FOLD = {"fold": 1, "test_speakers": ["09"], "valid_speakers": ["10"], "train_speakers": ["03", "08"],
        "test": ["09-a"], "valid": ["10-a"], "train": ["03-a", "08-a"]}


def test_read_utt_list_takes_first_fields_and_refuses_a_duplicate(tmp_path):
    path = tmp_path / "train.list"
    path.write_text("03-a extra\n\n08-a\n")
    assert read_utt_list(path) == ["03-a", "08-a"]
    path.write_text("03-a\n08-a\n03-a\n")
    with pytest.raises(SerError, match=r"train\.list:3: duplicate utterance '03-a'$"):
        read_utt_list(path)


def test_read_fold_lists_names_a_missing_list(tmp_path):
    write_folds(tmp_path / "folds", [FOLD], ["anger", "neutral"])
    assert read_fold_lists(tmp_path / "folds" / "1") == {"train": ["03-a", "08-a"], "valid": ["10-a"],
                                                         "test": ["09-a"]}
    os.remove(tmp_path / "folds" / "1" / "valid.list")
    with pytest.raises(SerError, match=r"1/valid\.list: no such file \(a fold dir needs"):
        read_fold_lists(tmp_path / "folds" / "1")


def test_info_yaml_round_trip_and_optional_reading(tmp_path):
    out = tmp_path / "folds"
    assert write_folds(out, [FOLD], ["anger", "neutral"], info={"seed": 3}) is True
    assert write_folds(out, [FOLD], ["anger", "neutral"], info={"seed": 3}) is False   # unchanged
    text = (out / "1" / "info.yaml").read_text()
    assert 'test_speakers:\n- "09"\n' in text and text.endswith("num_test: 1\nseed: 3\n")
    info = read_info(out / "1")
    assert info_speakers(info, "test_speakers") == ["09"] and info["seed"] == 3
    assert read_info(tmp_path / "nowhere") == {}
    with pytest.raises(FileNotFoundError):
        read_info(tmp_path / "nowhere", required=True)
    assert info_speakers({"valid_speakers": 10}, "valid_speakers") == ["10"]
    (out / "1" / "info.yaml").write_text("- a\n")
    with pytest.raises(SerError, match="info.yaml: expected a mapping"):
        read_info(out / "1")


def test_fold_numbers(tmp_path):
    assert fold_numbers(tmp_path / "none") == []
    with pytest.raises(SerError, match="no folds directory"):
        read_fold_dirs(tmp_path / "none")
    for d in ("10", "2", "x"):
        (tmp_path / d).mkdir()
    assert read_fold_dirs(tmp_path) == [2, 10]
