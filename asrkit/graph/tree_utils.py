"""Trees, topologies and the stored model format that the graph builder and decoder read.

Stored model format (``final.mdl`` and friends), written by :func:`save_model`::

    torch.save({
        "format": "asrkit-hmm-v1",
        "transition_model": kaldi_hmm_gmm.TransitionModel,   # pickles
        "tree": kaldi_hmm_gmm.ContextDependency,             # pickles
        ...                                                  # anything else: "am" (AmDiagGmm), priors, ...
    }, path)

:func:`load_model` reads that (``torch.load(weights_only=False)``, or plain pickle), and also accepts the
keys ``trans_model``/``tm`` and ``ctx_dep``/``context_dependency``. Alternatively a model can be given as
a Kaldi binary ``tree`` file (ContextDependency layout, see docs/stack.md) plus a ``topo`` text file:
:func:`model_from_tree_and_topo` builds the TransitionModel from them (its transition ids are fully
determined by the tree and the topology; only the transition probabilities are then uniform-from-topo).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from asrkit.fst import kaldi_hmm_gmm

PathLike = Union[str, Path]
MODEL_FORMAT = "asrkit-hmm-v1"


@dataclass
class HmmModel:
    transition_model: Any  # kaldi_hmm_gmm.TransitionModel
    tree: Any  # kaldi_hmm_gmm.ContextDependency
    extra: Dict[str, Any]


def read_topo(path_or_text: Union[PathLike, str]):
    """An ``HmmTopology`` from a Kaldi ``topo`` text file (or its text)."""
    text = str(path_or_text)
    if "<Topology>" not in text:
        text = Path(path_or_text).read_text()
    topo = kaldi_hmm_gmm.HmmTopology()
    topo.read(text)
    return topo


def monophone_tree(topo):
    """A stand-in monophone ContextDependency (N=1, P=0): one pdf per (phone, pdf-class)."""
    return kaldi_hmm_gmm.monophone_context_dependency(topo.phones, topo.get_phone_to_num_pdf_classes())


def tree_from_bytes(data: bytes):
    """A ContextDependency from Kaldi's binary layout (with or without the ``\\0B`` header)."""
    if data[:2] == b"\x00B":
        data = data[2:]
    if not data.startswith(b"ContextDependency"):
        raise ValueError("not a binary Kaldi ContextDependency (tree) file")
    cd = kaldi_hmm_gmm.ContextDependency.__new__(kaldi_hmm_gmm.ContextDependency)
    cd.__setstate__((np.frombuffer(data, dtype=np.int8).tolist(),))
    return cd


def tree_to_bytes(tree) -> bytes:
    """Kaldi's binary layout of a ContextDependency (with the ``\\0B`` header, as Kaldi writes it)."""
    return b"\x00B" + np.asarray(tree.__getstate__()[0], dtype=np.int8).tobytes()


def read_tree(path: PathLike):
    return tree_from_bytes(Path(path).read_bytes())


def model_from_tree_and_topo(tree, topo) -> HmmModel:
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


def save_model(path: PathLike, transition_model, tree, **extra) -> Path:
    """Store a model in the documented format (atomically)."""
    import torch

    from asrkit.utils.atomic import atomic_path

    obj = {"format": MODEL_FORMAT, "transition_model": transition_model, "tree": tree, **extra}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def _pick(d: Dict[str, Any], names) -> Optional[Any]:
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    return None


def load_model(path: PathLike) -> HmmModel:
    """Read a model stored by :func:`save_model` (torch.save or pickle of a dict)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    try:
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as torch_err:  # not a torch archive: try plain pickle
        try:
            with open(path, "rb") as f:
                obj = pickle.load(f)
        except Exception:
            raise ValueError(f"{path}: neither a torch.save nor a pickle file ({torch_err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict with 'transition_model' and 'tree', got {type(obj).__name__}")
    tm = _pick(obj, ("transition_model", "trans_model", "tm"))
    tree = _pick(obj, ("tree", "ctx_dep", "context_dependency"))
    if tm is None or tree is None:
        raise ValueError(
            f"{path}: a model must hold 'transition_model' and 'tree' (keys found: {sorted(obj)})"
        )
    if isinstance(tree, (bytes, bytearray)):
        tree = tree_from_bytes(bytes(tree))
    extra = {k: v for k, v in obj.items() if k not in ("transition_model", "trans_model", "tm", "tree",
                                                        "ctx_dep", "context_dependency")}
    return HmmModel(tm, tree, extra)


def transition_arrays(trans_model) -> Dict[str, np.ndarray]:
    """Per transition id (index 0 unused): pdf, phone, self-loop flag; what the decoder needs."""
    n = trans_model.num_transition_ids
    tid2pdf = np.asarray(trans_model.transition_id_to_pdf_array(), dtype=np.int32)
    if len(tid2pdf) != n + 1:
        raise RuntimeError(f"transition_id_to_pdf_array has {len(tid2pdf)} entries, expected {n + 1}")
    tid2pdf = tid2pdf.copy()
    tid2pdf[0] = -1
    tid2phone = np.zeros(n + 1, dtype=np.int32)
    self_loop = np.zeros(n + 1, dtype=bool)
    for t in range(1, n + 1):
        tid2phone[t] = trans_model.transition_id_to_phone(t)
        self_loop[t] = trans_model.is_self_loop(t)
    return {"tid2pdf": tid2pdf, "tid2phone": tid2phone, "is_self_loop": self_loop,
            "num_pdfs": np.int64(trans_model.num_pdfs)}


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


def widen_monophone_tree(tree, context_width: int = 3, central_position: int = 1):
    """A tree of context width N / central position P whose pdfs still depend only on the central phone.

    Rewrites a monophone tree's binary layout (N=1, P=0, top ``TE`` on key 0) to N, P and top key P:
    the same pdfs, but graphs are built with a real context-dependency transducer (``compose_context``
    with N=3, P=1), as they will be for a triphone tree. For tests and benchmarks.
    """
    data = tree_to_bytes(tree)[2:]
    head = b"ContextDependency \x04"
    if not data.startswith(head) or tree.context_width != 1:
        raise ValueError("expected a monophone tree (N=1)")
    p = len(head)
    data = bytearray(data)
    data[p:p + 4] = int(context_width).to_bytes(4, "little", signed=True)
    assert data[p + 4] == 4
    data[p + 5:p + 9] = int(central_position).to_bytes(4, "little", signed=True)
    rest = bytes(data[p + 9:])
    te = b"ToPdf TE \x04"
    if not rest.startswith(te):
        raise ValueError("unexpected monophone tree layout")
    q = p + 9 + len(te)
    data[q:q + 4] = int(central_position).to_bytes(4, "little", signed=True)
    return tree_from_bytes(bytes(data))
