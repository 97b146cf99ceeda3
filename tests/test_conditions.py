"""Test-condition names (ser.eval.conditions) and the scoring command of each
(ser.bin.score_command), with the lines and error texts that run.sh's score_args printed."""
import os
import subprocess
import sys

import pytest

from ser.errors import SerError
from ser.eval import conditions
from ser.eval.conditions import from_dir, parse, score_command, sort_key, validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = "ser.bin.score_attack --attack {} --eps {} {} --feats-dir data/all4_spec"


@pytest.mark.parametrize("name, eps, line", [
    ("clean", "0.08", "ser.bin.score --feats-dir data/all4_spec"),
    ("snr10", "0.08", "ser.bin.score --feats-dir data/all4_snr10_spec"),
    ("snr-5", "0.08", "ser.bin.score --feats-dir data/all4_snr-5_spec"),
    ("fgsm", "0.08", TRAIN.format("fgsm", "0.08", "")),                      # two spaces, as the shell
    ("bim", "0.08", TRAIN.format("bim", "0.08", "--alpha 0.01 --steps 10")),
    ("bim_eps0.02", "0.08", TRAIN.format("bim", "0.02", "--alpha 0.0025 --steps 10")),
    ("bim_eps.5", None, TRAIN.format("bim", ".5", "--alpha 0.0625 --steps 10")),
    ("bim_eps0.0001", None, TRAIN.format("bim", "0.0001", "--alpha 1.25e-05 --steps 10")),
    ("bim_eps0.123456789", None, TRAIN.format("bim", "0.123456789", "--alpha 0.0154321 --steps 10")),
    ("fgsm_eps5", None, TRAIN.format("fgsm", "5", "")),
])
def test_score_command_lines(name, eps, line):
    assert score_command(name, "data/all4", "spec", eps) == line


@pytest.mark.parametrize("name, message", [
    ("snr1000", "unknown test condition 'snr1000' (snrN: N an integer SNR in dB)"),
    ("snr2.5", "unknown test condition 'snr2.5' (snrN: N an integer SNR in dB)"),
    ("snr", "unknown test condition 'snr' (snrN: N an integer SNR in dB)"),
    ("Clean", "unknown test condition 'Clean' (clean snrN fgsm bim fgsm_epsX bim_epsX)"),
    ("bim_x", "unknown test condition 'bim_x' (clean snrN fgsm bim fgsm_epsX bim_epsX)"),
    ("fgsm_eps", "attack radius '' is not a number (condition fgsm_eps?)"),
    ("bim_eps1e-3", "attack radius '1e-3' is not a number (condition bim_eps1e-3?)"),
    ("bim_eps0.02_eps3", "attack radius '0.02_eps3' is not a number (condition bim_eps0.02_eps3?)"),
])
def test_bad_names_are_one_line_errors(name, message):
    with pytest.raises(SerError) as e:
        score_command(name, "data/all4", "spec", "0.08")
    assert str(e.value) == message


def test_bad_default_radius_names_the_condition():
    with pytest.raises(SerError, match=r"^attack radius '1e-3' is not a number \(condition fgsm_eps1e-3\?\)$"):
        score_command("fgsm", "data/all4", "spec", "1e-3")
    with pytest.raises(SerError, match="needs the attack radius"):
        score_command("bim", "data/all4", "spec")


def test_parse_and_order_of_scored_directories():
    assert parse("snr-5") == conditions.Condition("snr-5", "noise", snr="-5")
    assert parse("bim_eps0.02").eps == "0.02" and parse("bim").eps is None
    assert from_dir("test_fgsm_eps0.02").attack == "fgsm" and from_dir("snr0").kind == "other"
    assert validate("snr20").dir_name == "test_snr20"
    dirs = ["test_bim", "test_weird", "test_snr10", "test_fgsm_eps0.02", "test_clean", "test_snr-5", "test_fgsm"]
    assert sorted(dirs, key=sort_key) == ["test_clean", "test_snr-5", "test_snr10", "test_fgsm",
                                          "test_fgsm_eps0.02", "test_bim", "test_weird"]


def test_program_prints_one_line_per_condition_or_fails_in_one_line():
    cmd = [sys.executable, "-m", "ser.bin.score_command", "--data", "data/all", "--feat", "mel", "--eps", "0.08"]
    r = subprocess.run(cmd + ["clean", "bim"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and r.stdout == ("ser.bin.score --feats-dir data/all_mel\n"
                                              "ser.bin.score_attack --attack bim --eps 0.08 --alpha 0.01 "
                                              "--steps 10 --feats-dir data/all_mel\n")
    r = subprocess.run(cmd + ["clean", "snrx"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "score_command.py: error: unknown test condition 'snrx' (snrN: N an integer SNR in dB)\n"
