"""utils/parse_options.sh: Kaldi's option semantics, exercised through a small sourcing script."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=10
foo_bar=abc
use_gpu=false
empty=
help_message="Usage: $0 [options] <dir>\n  --stage N   first stage"
. "{po}"
printf 'stage=%s\n' "$stage"
printf 'stop_stage=%s\n' "$stop_stage"
printf 'foo_bar=%s\n' "$foo_bar"
printf 'use_gpu=%s\n' "$use_gpu"
printf 'empty=%s\n' "$empty"
printf 'config=%s\n' "$config"
printf 'nargs=%s\n' "$#"
for a in "$@"; do printf 'arg=%s\n' "$a"; done
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    p = tmp_path / "myscript.sh"
    p.write_text(SCRIPT.replace("{po}", str(REPO / "utils" / "parse_options.sh")))
    return p


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          cwd=script.parent, timeout=30)


def values(out: str) -> dict:
    d: dict = {"arg": []}
    for line in out.splitlines():
        k, v = line.split("=", 1)
        if k == "arg":
            d["arg"].append(v)
        else:
            d[k] = v
    return d


def test_defaults_untouched(script):
    r = run(script)
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert (v["stage"], v["foo_bar"], v["use_gpu"], v["nargs"]) == ("0", "abc", "false", "0")


def test_options_set_variables_dash_to_underscore(script):
    r = run(script, "--stage", "3", "--stop-stage", "5", "--foo-bar", "x y $HOME \"q\"",
            "--use-gpu", "true", "--empty", "now")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert v["stage"] == "3"
    assert v["stop_stage"] == "5"
    assert v["foo_bar"] == 'x y $HOME "q"'  # verbatim, never re-evaluated
    assert v["use_gpu"] == "true"
    assert v["empty"] == "now"


def test_equals_form(script):
    r = run(script, "--stage=4", "--foo-bar=a=b", "--use-gpu=true", "--empty=")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert (v["stage"], v["foo_bar"], v["use_gpu"], v["empty"]) == ("4", "a=b", "true", "")


def test_underscore_spelling_also_accepted(script):
    # Kaldi maps dashes to underscores, so --stop_stage names the same variable
    r = run(script, "--stop_stage", "7")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout)["stop_stage"] == "7"


def test_positional_args_left_and_parsing_stops_at_first(script):
    r = run(script, "--stage", "2", "data/train", "--stage", "9", "two words")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert v["stage"] == "2"
    assert v["nargs"] == "4"
    assert v["arg"] == ["data/train", "--stage", "9", "two words"]


def test_double_dash_ends_options(script):
    r = run(script, "--stage", "1", "--", "--not-an-option")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout)["arg"] == ["--not-an-option"]


@pytest.mark.parametrize("args", [["--no-such-option", "1"], ["--no-such=1"], ["--bad.name", "1"]])
def test_unknown_option_is_an_error(script, args):
    r = run(script, *args)
    assert r.returncode == 1
    assert "invalid option " + args[0].split("=")[0] in r.stderr
    assert r.stdout == ""


def test_option_without_value_is_an_error(script):
    r = run(script, "--stage")
    assert r.returncode == 1
    assert "--stage" in r.stderr


@pytest.mark.parametrize("val", ["yes", "1", "True", ""])
def test_boolean_option_needs_true_or_false(script, val):
    r = run(script, "--use-gpu", val)
    assert r.returncode == 1
    assert 'expected "true" or "false"' in r.stderr
    assert "--use-gpu" in r.stderr


def test_config_file(script, tmp_path):
    conf = tmp_path / "my.conf"
    conf.write_text("# a comment\nstage=7\nfoo_bar='from config'\nuse_gpu=true\n")
    r = run(script, "--config", str(conf), "a")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert (v["stage"], v["foo_bar"], v["use_gpu"]) == ("7", "from config", "true")
    assert v["config"] == str(conf)
    assert v["arg"] == ["a"]


def test_command_line_overrides_config_wherever_it_is(script, tmp_path):
    conf = tmp_path / "my.conf"
    conf.write_text("stage=7\nstop_stage=8\n")
    r = run(script, "--stage", "1", f"--config={conf}")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert (v["stage"], v["stop_stage"]) == ("1", "8")


def test_missing_config_is_an_error(script, tmp_path):
    r = run(script, "--config", str(tmp_path / "nope.conf"))
    assert r.returncode == 1
    assert "nope.conf" in r.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_message_and_exits_zero(script, flag):
    r = run(script, "--stage", "3", flag, "--no-such-option")
    assert r.returncode == 0
    assert "Usage: " in r.stderr and "myscript.sh [options] <dir>" in r.stderr
    assert "\n  --stage N   first stage" in r.stderr  # \n in help_message is a newline
    assert r.stdout == ""  # the script body did not run


def test_empty_cmd_is_an_error(tmp_path):
    p = tmp_path / "s.sh"
    p.write_text(f'cmd=run.pl\n. "{REPO}/utils/parse_options.sh"\necho "cmd=$cmd"\n')
    r = subprocess.run(["bash", str(p), "--cmd", "utils/run_local.sh --mem 4G"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "cmd=utils/run_local.sh --mem 4G"
    r = subprocess.run(["bash", str(p), "--cmd", ""], capture_output=True, text=True)
    assert r.returncode == 1 and "empty argument to --cmd" in r.stderr


def test_no_helper_variables_leak(tmp_path):
    p = tmp_path / "s.sh"
    p.write_text(f'set -u\nstage=0\n. "{REPO}/utils/parse_options.sh"\n'
                 'compgen -v | grep "^__po_" || echo clean\n')
    r = subprocess.run(["bash", str(p), "--stage", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "clean"
