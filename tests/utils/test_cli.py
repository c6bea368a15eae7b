"""The one command-line convention of asrkit.bin (asrkit/utils/cli.py, asrkit/bin/__init__.py)."""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from asrkit.utils.cli import add_force, add_nj, add_option, add_out_dir, optional, parse_bool

BIN = Path(__file__).resolve().parents[2] / "asrkit" / "bin"


@pytest.mark.parametrize("word,want", [("true", True), ("Yes", True), ("ON", True), ("1", True),
                                       ("false", False), ("no", False), ("Off", False), ("0", False)])
def test_parse_bool_words(word, want):
    assert parse_bool(word) is want


@pytest.mark.parametrize("word", ["maybe", "", "2", "truee"])
def test_parse_bool_refuses_other_words(word):
    with pytest.raises(argparse.ArgumentTypeError, match="expected one of"):
        parse_bool(word)


def test_optional_takes_none():
    conv = optional(int)
    assert conv("none") is None and conv("NULL") is None and conv("7") == 7


def _parser():
    p = argparse.ArgumentParser(prog="tool")
    add_nj(p)
    add_out_dir(p, "where")
    add_force(p)
    add_option(p, "--mode", "--old-mode", default="a")
    return p


def test_new_spellings_do_not_warn(capsys):
    a = _parser().parse_args(["--nj", "3", "--out-dir", "d", "--force"])
    assert (a.nj, a.out_dir, a.force, a.mode) == (3, "d", True, "a")
    assert capsys.readouterr().err == ""


def test_old_spellings_are_aliases_that_warn(capsys):
    a = _parser().parse_args(["--num-jobs", "4", "--out", "d2", "--overwrite", "--old-mode", "b"])
    assert (a.nj, a.out_dir, a.force, a.mode) == (4, "d2", True, "b")
    err = capsys.readouterr().err
    for old, new in (("--num-jobs", "--nj"), ("--out", "--out-dir"), ("--overwrite", "--force"),
                     ("--old-mode", "--mode")):
        assert f"tool: warning: {old} is deprecated and goes in the next release; use {new}" in err


def test_required_option_is_satisfied_by_its_old_spelling():
    p = _parser()
    assert p.parse_args(["--out", "x"]).out_dir == "x"
    with pytest.raises(SystemExit):
        p.parse_args([])
    a = p.parse_args(["--out-dir", "x"])
    assert a.force is False and a.nj == 1


def _tools():
    return sorted(f.stem for f in BIN.glob("*.py") if f.stem != "__init__")


@pytest.mark.parametrize("tool", _tools())
def test_every_tool_has_get_parser(tool):
    mod = importlib.import_module(f"asrkit.bin.{tool}")
    assert not hasattr(mod, "build_parser"), tool
    p = mod.get_parser()
    assert isinstance(p, argparse.ArgumentParser)
    flags = {s for a in p._actions for s in a.option_strings}
    # the convention's old spellings exist only as aliases of the new ones
    for old, new in (("--num-jobs", "--nj"), ("--overwrite", "--force"), ("--output-dir", "--out-dir")):
        assert old not in flags or new in flags, (tool, old)


@pytest.mark.parametrize("tool,argv,dest,value,old", [
    ("compute_features", ["--cuts", "c", "--out-dir", "o", "--set", "s", "--num-jobs", "2"], "nj", 2, "--num-jobs"),
    ("compute_cmvn", ["--cuts", "c", "--out", "o.npz", "--overwrite"], "force", True, "--overwrite"),
    ("decode", ["--graph", "g", "--scores", "s", "--out", "d"], "out_dir", "d", "--out"),
    ("decode_data", ["--step", "merge", "--out-dir", "d", "--num-jobs", "3"], "nj", 3, "--num-jobs"),
    ("pseudo_label", ["--out-dir", "o", "--num-jobs", "2"], "nj", 2, "--num-jobs"),
    ("export_model", ["--system", "s", "--out", "m", "--overwrite"], "out_dir", "m", "--out"),
    ("prepare_manifests", ["--data-dir", "d", "--set", "s", "--out", "m"], "out_dir", "m", "--out"),
])
def test_renamed_flags_of_the_tools(tool, argv, dest, value, old, capsys):
    a = importlib.import_module(f"asrkit.bin.{tool}").get_parser().parse_args(argv)
    assert getattr(a, dest) == value
    assert f"{old} is deprecated" in capsys.readouterr().err


def test_training_tools_share_one_bool_and_sync_default():
    from asrkit.bin.train_nnet import get_parser as nnet_parser
    from asrkit.bin.train_student import get_parser as student_parser

    base = ["--cmvn", "c", "--out-dir", "o"]
    a = nnet_parser().parse_args(["--train-cuts", "t", *base, "--progress", "off", "--dropout", "none"])
    assert a.sync == "none" and a.cfg_progress is False and a.cfg_dropout is None
    s = student_parser().parse_args(["--mode", "supervised", "--labelled-cuts", "t", *base, "--equal-updates", "yes",
                                     "--sync", "gtc", "--gtc-per-tensor", "on"])
    assert s.equal_updates is True and s.sync == "gtc" and s.gtc_per_tensor is True
    with pytest.raises(SystemExit):
        student_parser().parse_args(["--mode", "supervised", "--labelled-cuts", "t", *base, "--equal-updates", "maybe"])
