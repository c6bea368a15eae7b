"""A GMM-HMM model: ``AmDiagGmm`` + ``TransitionModel`` + ``ContextDependency`` (tree) + metadata.

Stored format (``exp/<sys>/<iter>.mdl``, ``final.mdl``), the one of :mod:`asrkit.graph.tree_utils`
so that ``asrkit.bin.make_graph --model`` reads it directly::

    torch.save({
        "format": "asrkit-hmm-v1",
        "transition_model": kaldi_hmm_gmm.TransitionModel,   # pickles
        "tree": kaldi_hmm_gmm.ContextDependency,             # pickles (Kaldi binary layout)
        "am": kaldi_hmm_gmm.AmDiagGmm,                       # pickles
        "topo": str,                                         # Kaldi topology text
        "meta": dict,                                        # type (mono/tri), iteration, feature options
    }, path)

Also here: per-transition-id lookup arrays (:class:`TransitionInfo`), monophone initialisation
(``gmm-init-mono``), silence boosting (``gmm-boost-silence``), model summaries (``gmm-info``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from asrkit.fst import kaldi_hmm_gmm

log = logging.getLogger(__name__)
PathLike = Union[str, Path]
MODEL_FORMAT = "asrkit-hmm-v1"


def read_topo(path_or_text: Union[PathLike, str]):
    text = str(path_or_text)
    if "<Topology>" not in text:
        text = Path(path_or_text).read_text()
    topo = kaldi_hmm_gmm.HmmTopology()
    topo.read(text)
    return topo


@dataclass
class TransitionInfo:
    """numpy lookups indexed by transition id (index 0 unused, set to -1 / False)."""

    pdf: np.ndarray
    phone: np.ndarray
    hmm_state: np.ndarray
    pdf_class: np.ndarray
    is_self_loop: np.ndarray
    trans_index: np.ndarray  # index of the transition within its transition state
    num_pdfs: int

    @classmethod
    def from_model(cls, tm) -> "TransitionInfo":
        n = tm.num_transition_ids
        pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int32).copy()
        pdf[0] = -1
        id2state = np.asarray(tm.id2state, dtype=np.int64)
        state2id = np.asarray(tm.state2id, dtype=np.int64)
        tuples = np.asarray([t.__getstate__() for t in tm.tuples], dtype=np.int32).reshape(-1, 4)
        topo = tm.topo
        phone = np.full(n + 1, -1, dtype=np.int32)
        hmm_state = np.full(n + 1, -1, dtype=np.int32)
        pdf_class = np.full(n + 1, -1, dtype=np.int32)
        self_loop = np.zeros(n + 1, dtype=bool)
        trans_index = np.full(n + 1, -1, dtype=np.int32)
        entries: Dict[int, Any] = {}
        for tid in range(1, n + 1):
            st = int(id2state[tid])
            ph, hs = int(tuples[st - 1, 0]), int(tuples[st - 1, 1])
            phone[tid], hmm_state[tid] = ph, hs
            self_loop[tid] = bool(tm.is_self_loop(tid))
            trans_index[tid] = tid - int(state2id[st])
            if ph not in entries:
                entries[ph] = topo.topology_for_phone(ph)
            s = entries[ph][hs]
            pdf_class[tid] = s.self_loop_pdf_class if self_loop[tid] else s.forward_pdf_class
        return cls(pdf, phone, hmm_state, pdf_class, self_loop, trans_index, int(tm.num_pdfs))

    def phone_starts(self, ali: np.ndarray) -> np.ndarray:
        """bool [T]: frames that begin a phone instance.

        In alignments of the graphs compiled here (and mkgraph's, both ``reorder``-ed) a visit of k
        frames to an HMM state carries the state's forward transition on its first frame and self-loops
        on the other k-1; so a phone instance begins where the HMM state is 0 and the transition is not
        a self-loop (docs/stack.md), which also separates two instances of the same phone.
        """
        ali = np.asarray(ali, dtype=np.int64)
        if len(ali) == 0:
            return np.zeros(0, dtype=bool)
        start = (self.hmm_state[ali] == 0) & ~self.is_self_loop[ali]
        start[0] = True
        return start


@dataclass
class GmmModel:
    am: Any  # kaldi_hmm_gmm.AmDiagGmm
    transition_model: Any  # kaldi_hmm_gmm.TransitionModel
    tree: Any  # kaldi_hmm_gmm.ContextDependency
    topo_text: str
    meta: Dict[str, Any] = field(default_factory=dict)
    _info: Optional[TransitionInfo] = field(default=None, repr=False, compare=False)

    @property
    def info(self) -> TransitionInfo:
        if self._info is None:
            self._info = TransitionInfo.from_model(self.transition_model)
        return self._info

    @property
    def topo(self):
        return read_topo(self.topo_text)

    @property
    def num_pdfs(self) -> int:
        return int(self.am.num_pdfs)

    @property
    def num_gauss(self) -> int:
        return int(self.am.num_gauss)

    @property
    def dim(self) -> int:
        return int(self.am.dim)

    def summary(self) -> Dict[str, Any]:
        """Like Kaldi's gmm-info."""
        return {"pdfs": self.num_pdfs, "gaussians": self.num_gauss, "dim": self.dim,
                "transition_ids": int(self.transition_model.num_transition_ids),
                "transition_states": int(self.transition_model.num_transition_states),
                "phones": len(self.transition_model.phones),
                "context_width": int(self.tree.context_width),
                "central_position": int(self.tree.central_position)}

    def copy(self) -> "GmmModel":
        import pickle

        return pickle.loads(pickle.dumps(self))

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_info"] = None
        return d

    def save(self, path: PathLike) -> Path:
        """Write atomically (torch.save of the documented dict)."""
        import torch

        from asrkit.utils.atomic import atomic_path

        obj = {"format": MODEL_FORMAT, "transition_model": self.transition_model, "tree": self.tree,
               "am": self.am, "topo": self.topo_text, "meta": dict(self.meta)}
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: PathLike) -> "GmmModel":
        import torch

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"GMM model not found: {path}")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise ValueError(f"{path}: not a torch.save file ({e})") from None
        if not isinstance(obj, dict) or "am" not in obj or "transition_model" not in obj or "tree" not in obj:
            keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(f"{path}: not a GMM model (needs 'am', 'transition_model', 'tree'; found {keys})")
        topo = obj.get("topo")
        if topo is None:
            topo = str(obj["transition_model"].topo)
        return cls(obj["am"], obj["transition_model"], obj["tree"], topo, dict(obj.get("meta", {})))


def global_stats(feats: Sequence[np.ndarray]) -> tuple:
    """(mean, var) float64 over all frames."""
    n = sum(len(f) for f in feats)
    if n == 0:
        raise ValueError("no frames to compute global statistics from")
    s = sum(f.sum(0, dtype=np.float64) for f in feats)
    q = sum(np.square(f, dtype=np.float64).sum(0) for f in feats)
    mean = s / n
    return mean, np.maximum(q / n - mean * mean, 1e-3)


def single_gauss(mean: np.ndarray, var: np.ndarray):
    g = kaldi_hmm_gmm.DiagGmm(nmix=1, dim=len(mean))
    g.set_weights(np.ones(1, dtype=np.float32))
    g.set_means(np.asarray(mean, dtype=np.float32)[None])
    g.set_invvars((1.0 / np.asarray(var, dtype=np.float64)).astype(np.float32)[None])
    g.compute_gconsts()
    return g


def init_mono(topo_text: str, mean: np.ndarray, var: np.ndarray,
              shared_phones: Optional[Sequence[Sequence[int]]] = None) -> GmmModel:
    """gmm-init-mono: monophone tree, every pdf one Gaussian with the global mean and variance."""
    topo = read_topo(topo_text)
    p2n = topo.get_phone_to_num_pdf_classes()
    if shared_phones is None:
        tree = kaldi_hmm_gmm.monophone_context_dependency(topo.phones, p2n)
    else:
        tree = kaldi_hmm_gmm.monophone_context_dependency_shared([list(s) for s in shared_phones], p2n)
    am = kaldi_hmm_gmm.AmDiagGmm()
    g = single_gauss(mean, var)
    for _ in range(tree.num_pdfs):
        am.add_pdf(g)
    tm = kaldi_hmm_gmm.TransitionModel(tree, topo)
    return GmmModel(am, tm, tree, topo_text, {"type": "mono"})


def boost_silence(model: GmmModel, silence_phones: Sequence[int], boost: float):
    """gmm-boost-silence: a copy of the AmDiagGmm with the silence pdfs' weights scaled by ``boost``
    (weights not renormalised, as Kaldi: it scales the silence likelihoods)."""
    am = kaldi_hmm_gmm.AmDiagGmm()
    am.copy_from_am_diag_gmm(model.am)
    if boost == 1.0 or not silence_phones:
        return am
    _, pdfs = kaldi_hmm_gmm.get_pdfs_for_phones(model.transition_model, sorted(int(p) for p in silence_phones))
    for pdf in pdfs:
        g = am.get_pdf(pdf)
        g.set_weights((np.asarray(g.weights) * boost).astype(np.float32))
        g.compute_gconsts()
    return am


def gmm_params(am) -> list:
    """[(gconsts, means_invvars, inv_vars)] per pdf as float64 numpy (what the batched scorer uses)."""
    out = []
    for i in range(am.num_pdfs):
        g = am.get_pdf(i)
        out.append((np.asarray(g.gconsts, dtype=np.float64), np.asarray(g.means_invvars, dtype=np.float64),
                    np.asarray(g.inv_vars, dtype=np.float64)))
    return out
