"""Checkpoints: written atomically (temporary name, rename), holding everything to resume exactly.

Format ``asrkit-nnet-v1``: a ``torch.save`` dict with ``model_config`` (dict), ``model`` (state dict)
and, for training checkpoints, ``train_config``, ``optimizer``, ``scheduler``, ``scaler``, ``epoch``,
``batch_in_epoch`` (batches of ``epoch`` already done), ``step``, ``best``, ``rng`` (python, numpy,
torch, cuda states). ``best.pt`` holds the model, its configuration and its dev scores only.
"""
from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch

from asrkit.nnet.models import ModelConfig
from asrkit.utils.atomic import atomic_path

log = logging.getLogger(__name__)

FORMAT = "asrkit-nnet-v1"
PathLike = Union[str, Path]


class ConfigMismatchError(ValueError):
    pass


def save_checkpoint(path: PathLike, state: Dict) -> Path:
    path = Path(path)
    state = dict(state, format=FORMAT)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: PathLike, map_location="cpu") -> Dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model_config" not in ckpt:
        raise ValueError(f"{path}: not an asrkit network checkpoint (format {FORMAT})")
    return ckpt


def config_diff(saved: Dict, current: Dict) -> List[str]:
    keys = sorted(set(saved) | set(current))
    return [f"{k}: checkpoint {saved.get(k, '<absent>')!r}, now {current.get(k, '<absent>')!r}"
            for k in keys if saved.get(k, "<absent>") != current.get(k, "<absent>")]


def check_model_config(ckpt: Dict, cfg: ModelConfig, path: PathLike = "checkpoint") -> None:
    diff = config_diff(ckpt["model_config"], cfg.to_dict())
    if diff:
        raise ConfigMismatchError(f"{path} was written for another model configuration; fields that differ: "
                                  + "; ".join(diff))


def rng_state() -> Dict:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: Dict) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


_CKPT_RE = re.compile(r"^(checkpoint|epoch)-(\d+)\.pt$")


def list_checkpoints(out_dir: PathLike) -> List[Path]:
    """Training checkpoints in ``out_dir`` (checkpoint-<step>.pt, epoch-<n>.pt)."""
    d = Path(out_dir)
    if not d.is_dir():
        return []
    return [p for p in d.iterdir() if _CKPT_RE.match(p.name)]


def latest_checkpoint(out_dir: PathLike) -> Optional[Path]:
    """The training checkpoint with the highest step (read from each file; epoch files win ties)."""
    best, best_key = None, None
    for p in list_checkpoints(out_dir):
        try:
            ck = torch.load(p, map_location="cpu", weights_only=False, mmap=True)
        except Exception as e:  # noqa: BLE001 - a truncated file is skipped with a warning
            log.warning("skipping unreadable checkpoint %s: %s", p, e)
            continue
        key = (int(ck.get("step", -1)), p.name.startswith("epoch"))
        if best_key is None or key > best_key:
            best, best_key = p, key
    return best


def prune_checkpoints(out_dir: PathLike, keep_last: int) -> None:
    """Keep the ``keep_last`` newest ``checkpoint-<step>.pt`` (epoch files are kept)."""
    if keep_last <= 0:
        return
    d = Path(out_dir)
    steps = sorted(int(m.group(2)) for p in d.glob("checkpoint-*.pt") if (m := _CKPT_RE.match(p.name)))
    for s in steps[:-keep_last]:
        (d / f"checkpoint-{s}.pt").unlink(missing_ok=True)


def last_epoch_checkpoints(out_dir: PathLike, n: int) -> List[Path]:
    """The ``n`` epoch checkpoints of the highest epochs in ``out_dir``, oldest first (``epoch-<k>.pt``)."""
    if n < 1:
        raise ValueError(f"average over at least one epoch, not {n}")
    d = Path(out_dir)
    found = sorted((int(m.group(2)), p) for p in list_checkpoints(d)
                   if (m := _CKPT_RE.match(p.name)) and m.group(1) == "epoch")
    if len(found) < n:
        raise ValueError(f"{d}: {len(found)} epoch checkpoints (epoch-<k>.pt), fewer than the {n} to average")
    return [p for _, p in found[-n:]]


def average_models(paths: List[PathLike]) -> Dict:
    """icefall's ``--avg``: the element-wise mean (in float64) of the model weights of ``paths``, as a
    ``best.pt``-like checkpoint (model_config, model, step, epoch and train_config of the last file, the
    files averaged); integer buffers are the last file's. Every file must hold the same model."""
    if not paths:
        raise ValueError("no checkpoints to average")
    sums: Dict[str, torch.Tensor] = {}
    first = last = None
    for p in paths:
        ck = load_checkpoint(p)
        if first is None:
            first = ck
        diff = config_diff(first["model_config"], ck["model_config"])
        if diff or ck["model"].keys() != first["model"].keys():
            raise ConfigMismatchError(f"{p}: another model than {paths[0]} ({'; '.join(diff) or 'other weights'})")
        for k, v in ck["model"].items():
            if v.is_floating_point():
                sums[k] = sums[k] + v.double() if k in sums else v.double()
        last = ck
    model = {k: (sums[k] / len(paths)).to(v.dtype) if v.is_floating_point() else v
             for k, v in last["model"].items()}
    return {"model_config": last["model_config"], "model": model, "step": last.get("step"),
            "epoch": last.get("epoch"), "train_config": last.get("train_config"),
            "averaged": [Path(p).name for p in paths]}
