"""The stored HMM model format (``asrkit-hmm-v1``): transition model + tree, and whatever a system adds.

Written by :func:`save_model` (GMM systems' ``exp/<sys>/<iter>.mdl``, stage 6's ``exp/senone/final.mdl``)::

    torch.save({
        "format": "asrkit-hmm-v1",
        "transition_model": kaldi_hmm_gmm.TransitionModel,   # pickles
        "tree": kaldi_hmm_gmm.ContextDependency,             # pickles (Kaldi binary layout)
        ...                                                  # anything else: "am" (AmDiagGmm), "topo"
    }, path)                                                 # (Kaldi topology text), "meta" (dict), ...

:func:`load_model` reads that (``torch.load(weights_only=False)``, or plain pickle), and also accepts the
keys ``trans_model``/``tm`` and ``ctx_dep``/``context_dependency``. Alternatively a model can be given as
a Kaldi binary ``tree`` file plus a ``topo`` text file: :func:`model_from_tree_and_topo` builds the
TransitionModel from them (its transition ids are fully determined by the tree and the topology; only the
transition probabilities are then uniform-from-topo).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from asrkit.fst import kaldi_hmm_gmm
from asrkit.hmm.topology import read_topo
from asrkit.hmm.tree_io import monophone_tree, read_tree, tree_from_bytes
from asrkit.utils.atomic import atomic_path

PathLike = Union[str, Path]
MODEL_FORMAT = "asrkit-hmm-v1"
_TM_KEYS = ("transition_model", "trans_model", "tm")
_TREE_KEYS = ("tree", "ctx_dep", "context_dependency")


@dataclass
class HmmModel:
    transition_model: Any  # kaldi_hmm_gmm.TransitionModel
    tree: Any  # kaldi_hmm_gmm.ContextDependency
    extra: Dict[str, Any]


def save_model(path: PathLike, transition_model, tree, **extra) -> Path:
    """Store a model in the documented format (atomically); ``extra`` keys follow in their order."""
    import torch  # here, not at the top: importing asrkit.hmm (topologies, trees) stays light without it

    obj = {"format": MODEL_FORMAT, "transition_model": transition_model, "tree": tree, **extra}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def _pick(d: Dict[str, Any], names) -> Optional[Any]:
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    return None


def load_model(path: PathLike, what: str = "model") -> HmmModel:
    """Read a model stored by :func:`save_model` (torch.save or pickle of a dict); ``what`` names it in
    errors (e.g. "GMM model")."""
    import torch  # as in save_model

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as torch_err:  # not a torch archive: try plain pickle
        try:
            with open(path, "rb") as f:
                obj = pickle.load(f)
        except Exception:
            raise ValueError(f"{path}: neither a torch.save nor a pickle file ({torch_err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict with 'transition_model' and 'tree', got {type(obj).__name__}")
    tm = _pick(obj, _TM_KEYS)
    tree = _pick(obj, _TREE_KEYS)
    if tm is None or tree is None:
        raise ValueError(f"{path}: a model must hold 'transition_model' and 'tree' (keys found: {sorted(obj)})")
    if isinstance(tree, (bytes, bytearray)):
        tree = tree_from_bytes(bytes(tree), f"{path}:tree")
    extra = {k: v for k, v in obj.items() if k not in _TM_KEYS + _TREE_KEYS}
    return HmmModel(tm, tree, extra)


def model_from_tree_and_topo(tree, topo) -> HmmModel:
    """A TransitionModel for a tree (ContextDependency or tree file) and a topology (HmmTopology, file or text)."""
    if isinstance(tree, (str, Path)):
        tree = read_tree(tree)
    if isinstance(topo, (str, Path)):
        topo = read_topo(topo)
    return HmmModel(kaldi_hmm_gmm.TransitionModel(tree, topo), tree, {})


def standin_model(topo) -> HmmModel:
    """Monophone tree + TransitionModel for a topology: the stand-in until a real tree exists."""
    if isinstance(topo, (str, Path)):
        topo = read_topo(topo)
    return model_from_tree_and_topo(monophone_tree(topo), topo)


def load_any_model(model: Optional[PathLike] = None, tree: Optional[PathLike] = None,
                   topo: Optional[PathLike] = None) -> Tuple[HmmModel, str]:
    """``--model`` file, or ``--tree`` + ``--topo``, or only ``--topo`` (stand-in monophone tree)."""
    if model is not None:
        return load_model(model), f"model {model}"
    if topo is None:
        raise ValueError("give --model, or --tree and --topo, or --topo alone (stand-in monophone tree)")
    if tree is not None:
        return model_from_tree_and_topo(tree, topo), f"tree {tree} + topo {topo}"
    return standin_model(topo), f"stand-in monophone tree from {topo}"
