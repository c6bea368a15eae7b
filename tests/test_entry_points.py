"""Every console script in setup.cfg resolves to a callable, and every tool under asrkit/bin has one
(``asrkit-<tool>``, as docs/design.md says), so a pip-installed asrkit has no dead command."""
from __future__ import annotations

import configparser
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _console_scripts() -> dict:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    out = {}
    for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines():
        name, target = (s.strip() for s in line.split("=", 1))
        out[name] = target
    return out


def _bin_tools() -> list:
    return sorted(p.stem for p in (REPO / "asrkit" / "bin").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name,target", sorted(_console_scripts().items()))
def test_console_script_resolves(name, target):
    module, _, attr = target.partition(":")
    assert (REPO / (module.replace(".", "/") + ".py")).exists(), f"{name}: no module {module}"
    fn = getattr(importlib.import_module(module), attr, None)
    assert callable(fn), f"{name}: {target} is not a callable"


def test_every_tool_has_a_console_script():
    registered = {t.partition(":")[0].rsplit(".", 1)[-1] for t in _console_scripts().values()}
    missing = [t for t in _bin_tools() if t not in registered]
    assert not missing, f"asrkit/bin tools without a console script in setup.cfg: {missing}"
    for name, target in _console_scripts().items():
        tool = target.partition(":")[0].rsplit(".", 1)[-1]
        assert name == "asrkit-" + tool.replace("_", "-"), f"{name} should be named asrkit-{tool.replace('_', '-')}"
