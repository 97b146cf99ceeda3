"""utils/parse_options.sh: Kaldi option parsing, exercised by running small bash scripts."""
import subprocess

import pytest

from conftest import REPO

PARSE_OPTIONS = REPO / "utils" / "parse_options.sh"

SCRIPT = f"""\
set -euo pipefail
stage=0
nj=4
foo_bar=default
use_gpu=false
declare declared_only
help_message="Usage: demo.sh [options] <in> <out>\\n  --stage N   first stage"
. {PARSE_OPTIONS}
echo "stage=$stage"
echo "nj=$nj"
echo "foo_bar=$foo_bar"
echo "use_gpu=$use_gpu"
echo "declared_only=${{declared_only-UNSET}}"
echo "nargs=$#"
for a in "$@"; do echo "arg=$a"; done
echo "leaked=$(compgen -v _po_ | tr '\\n' ' ')"
"""


@pytest.fixture
def demo(tmp_path):
    script = tmp_path / "demo.sh"
    script.write_text(SCRIPT)

    def run(*args):
        p = subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                           cwd=tmp_path, timeout=30)
        out = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line
                   and not line.startswith("arg="))
        out["args"] = [line[4:] for line in p.stdout.splitlines() if line.startswith("arg=")]
        return p, out

    return run


def test_defaults_untouched_without_options(demo):
    p, out = demo()
    assert p.returncode == 0, p.stderr
    assert (out["stage"], out["nj"], out["foo_bar"], out["use_gpu"]) == ("0", "4", "default", "false")
    assert out["nargs"] == "0" and out["args"] == []
    assert out["leaked"].strip() == ""  # helper variables are unset


def test_dashes_and_underscores_set_variables(demo):
    p, out = demo("--stage", "3", "--foo-bar", "a b  c", "--use_gpu", "true", "in", "out")
    assert p.returncode == 0, p.stderr
    assert out["stage"] == "3"
    assert out["foo_bar"] == "a b  c"  # value with spaces kept verbatim
    assert out["use_gpu"] == "true"
    assert out["args"] == ["in", "out"]


def test_equals_form_and_declared_but_unset_variable(demo):
    p, out = demo("--nj=7", "--declared-only", "x", "in")
    assert p.returncode == 0, p.stderr
    assert out["nj"] == "7" and out["declared_only"] == "x" and out["args"] == ["in"]


def test_stops_at_first_positional_argument(demo):
    p, out = demo("--stage", "2", "in", "--nj", "9", "out")
    assert p.returncode == 0, p.stderr
    assert out["stage"] == "2" and out["nj"] == "4"
    assert out["args"] == ["in", "--nj", "9", "out"]


def test_double_dash_ends_options(demo):
    p, out = demo("--stage", "1", "--", "--not-an-option")
    assert p.returncode == 0, p.stderr
    assert out["stage"] == "1" and out["args"] == ["--not-an-option"]


def test_unknown_option_is_an_error(demo):
    p, out = demo("--foo-baz", "1", "in")
    assert p.returncode == 1
    assert p.stderr.strip() == "parse_options.sh: invalid option --foo-baz"
    assert "stage" not in out  # the script stopped


def test_boolean_option_accepts_only_true_false(demo):
    p, _ = demo("--use-gpu", "yes")
    assert p.returncode == 1
    assert p.stderr.strip() == "parse_options.sh: option --use-gpu takes true or false, got 'yes'"
    p, out = demo("--use-gpu", "false")
    assert p.returncode == 0 and out["use_gpu"] == "false"


def test_option_without_value_is_an_error(demo):
    p, out = demo("--stage")
    assert p.returncode == 1
    assert p.stderr.strip() == "parse_options.sh: option --stage needs a value"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_help_message_and_exits_0(demo, flag):
    p, out = demo("--stage", "1", flag)
    assert p.returncode == 0
    assert p.stderr == "Usage: demo.sh [options] <in> <out>\n  --stage N   first stage\n"
    assert "stage" not in out


def test_config_is_sourced_first_and_command_line_wins(demo, tmp_path):
    (tmp_path / "my.conf").write_text("nj=16\nstage=5\nuse_gpu=true\n")
    # --config comes after --stage, yet --stage wins: the config is applied before any option.
    p, out = demo("--stage", "2", "--config", "my.conf", "in")
    assert p.returncode == 0, p.stderr
    assert (out["stage"], out["nj"], out["use_gpu"]) == ("2", "16", "true")
    assert out["args"] == ["in"]


def test_missing_config_is_an_error(demo):
    p, _ = demo("--config", "nope.conf", "in")
    assert p.returncode == 1
    assert "parse_options.sh: missing config file 'nope.conf'" in p.stderr
