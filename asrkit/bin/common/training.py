"""The command line shared by asrkit.bin.train_nnet and asrkit.bin.train_student.

* :func:`add_train_config_args`: every :class:`asrkit.nnet.train.TrainConfig` field as a flag
  (``--field-name VALUE``; booleans take :func:`asrkit.utils.cli.parse_bool`'s words, optional fields
  also ``none``), parsed into ``cfg_<field>`` and only where given;
* :func:`config_overrides` and :func:`load_train_config`: the yaml (flat, or under ``train:`` as in the
  config.yaml a run writes) overridden by those flags;
* :func:`claim_run_dir`: the one lock of a run (rank 0's).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path
from typing import Callable, Dict, Optional

import yaml

from asrkit.nnet.train import TrainConfig
from asrkit.utils.cli import optional, parse_bool
from asrkit.utils.dirlock import claim_output

_CONVERTERS: Dict[str, Callable] = {"int": int, "float": float, "str": str, "bool": parse_bool}
PREFIX = "cfg_"


def converter(type_name: str) -> Callable:
    """The argparse ``type`` of a TrainConfig field from its annotation (``int``, ``Optional[float]``, ...)."""
    base = type_name.replace("Optional[", "").rstrip("]")
    conv = _CONVERTERS[base]
    return optional(conv) if type_name.startswith("Optional[") else conv


def add_train_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("TrainConfig fields (override the yaml)")
    for f in fields(TrainConfig):
        type_name = f.type if isinstance(f.type, str) else f.type.__name__
        g.add_argument("--" + f.name.replace("_", "-"), dest=PREFIX + f.name, type=converter(type_name),
                       default=argparse.SUPPRESS, help=f"{type_name}, default {f.default!r}")


def config_overrides(a: argparse.Namespace) -> Dict:
    """The TrainConfig fields given as flags."""
    return {k[len(PREFIX):]: v for k, v in vars(a).items() if k.startswith(PREFIX)}


def load_train_config(path: Optional[str], overrides: Dict) -> TrainConfig:
    """The TrainConfig of yaml ``path`` (None: the defaults) with ``overrides``; FileNotFoundError or
    ValueError (an unknown field) otherwise."""
    d: Dict = {}
    if path:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"config not found: {p}")
        d = yaml.safe_load(p.read_text()) or {}
        if "train" in d and isinstance(d["train"], dict):
            d = d["train"]
    d.update(overrides)
    return TrainConfig.from_dict(d)


def claim_run_dir(out_dir, tool: str) -> None:
    """One lock per run: rank 0's (the other ranks write no files)."""
    if int(os.environ.get("RANK", "0")) == 0:
        claim_output(out_dir, tool)
