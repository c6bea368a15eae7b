"""A GMM-HMM model: ``AmDiagGmm`` + ``TransitionModel`` + ``ContextDependency`` (tree) + metadata.

Stored format (``exp/<sys>/<iter>.mdl``, ``final.mdl``): the ``asrkit-hmm-v1`` model file of
:mod:`asrkit.hmm.model` (so ``asrkit.bin.make_graph --model`` reads it directly) with three extra keys::

    "am": kaldi_hmm_gmm.AmDiagGmm,   # pickles
    "topo": str,                     # Kaldi topology text
    "meta": dict,                    # type (mono/tri), iteration, feature options

Also here: monophone initialisation (``gmm-init-mono``), silence boosting (``gmm-boost-silence``), model
summaries (``gmm-info``). Per-transition-id lookups are :class:`asrkit.hmm.TransitionInfo`.
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from asrkit.fst import kaldi_hmm_gmm
from asrkit.hmm.model import load_model, save_model
from asrkit.hmm.topology import read_topo
from asrkit.hmm.transitions import TransitionInfo
from asrkit.hmm.tree_io import monophone_tree

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


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
        return pickle.loads(pickle.dumps(self))

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_info"] = None
        return d

    def save(self, path: PathLike) -> Path:
        """Write atomically (:func:`asrkit.hmm.save_model` with "am", "topo" and "meta")."""
        return save_model(path, self.transition_model, self.tree, am=self.am, topo=self.topo_text,
                          meta=dict(self.meta))

    @classmethod
    def load(cls, path: PathLike) -> "GmmModel":
        m = load_model(path, what="GMM model")
        if "am" not in m.extra:
            raise ValueError(f"{path}: not a GMM model (needs 'am', 'transition_model', 'tree'; found "
                             f"{sorted(['transition_model', 'tree'] + list(m.extra))})")
        topo = m.extra.get("topo")
        if topo is None:
            topo = str(m.transition_model.topo)
        return cls(m.extra["am"], m.transition_model, m.tree, topo, dict(m.extra.get("meta", {})))


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
    tree = monophone_tree(topo, shared_phones)
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
