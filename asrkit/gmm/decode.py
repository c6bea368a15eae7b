"""Decoding with a GMM system: vectorised per-pdf log-likelihoods fed to :mod:`asrkit.decode`.

A GMM is just another source of [frames, num_pdfs] scores, so it goes through the same decoder
(kaldi_decoder.FasterDecoder over DecodableCtc), the same LM-weight sweep and the same scoring as the
networks. The log-likelihoods of every Gaussian of every pdf come from two matrix products per block
of frames; each pdf's mixture is a log-sum-exp over its Gaussians.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Iterator, Mapping, Sequence, Tuple, Union

import numpy as np

from asrkit.decode.decoder import DecodeConfig
from asrkit.decode.sweep import parse_weights, sweep
from asrkit.gmm.model import gmm_params
from asrkit.graph import make_graph_dir
from asrkit.hmm import HmmModel
from asrkit.utils.atomic import is_done
from asrkit.utils.blas import blas_threads

log = logging.getLogger(__name__)
PathLike = Union[str, Path]

# Kaldi's GMM scoring sweeps LM weights 7..17 around its decoding acoustic scale of 1/12.
DEFAULT_LM_WEIGHTS = "7:17:2"


class GmmScorer:
    """All Gaussians of an AmDiagGmm stacked, scoring [T, D] features into [T, num_pdfs] log-likelihoods."""

    def __init__(self, am):
        params = gmm_params(am)
        self.num_pdfs = len(params)
        self.gconsts = np.concatenate([p[0] for p in params]).astype(np.float32)
        self.means_invvars = np.concatenate([p[1] for p in params]).astype(np.float32)
        self.inv_vars = np.concatenate([p[2] for p in params]).astype(np.float32)
        sizes = np.array([len(p[0]) for p in params])
        self.offsets = np.r_[0, np.cumsum(sizes)[:-1]]
        self.single = bool((sizes == 1).all())

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        x = np.asarray(feats, dtype=np.float32)
        with blas_threads(1):
            L = x @ self.means_invvars.T - 0.5 * ((x * x) @ self.inv_vars.T) + self.gconsts
        if self.single:
            return L
        m = np.maximum.reduceat(L, self.offsets, axis=1)
        m_full = np.repeat(m, np.diff(np.r_[self.offsets, L.shape[1]]), axis=1)
        s = np.add.reduceat(np.exp(L - m_full), self.offsets, axis=1)
        return m + np.log(s)


def gmm_scores(model, feats: Mapping[str, np.ndarray]) -> Iterator[Tuple[str, np.ndarray]]:
    """(utt, [T, num_pdfs] log-likelihoods) for every utterance, in the order of ``feats``."""
    scorer = GmmScorer(model.am)
    for utt, f in feats.items():
        yield utt, scorer(f)


def decode_gmm(model, graph_dir: PathLike, feats: Mapping[str, np.ndarray], refs: Mapping[str, Sequence[str]],
               out_dir: PathLike, lm_weights: Union[str, Sequence[float]] = DEFAULT_LM_WEIGHTS,
               beam: float = 13.0, max_active: int = 7000, nj: int = 1) -> Dict[float, object]:
    """Decode ``feats`` with the graph at every LM weight, score against ``refs``, keep the best (Kaldi's
    decode.sh + score.sh). Writes ``out_dir`` as :func:`asrkit.decode.sweep.sweep` does."""
    weights = parse_weights(lm_weights) if isinstance(lm_weights, str) else list(lm_weights)
    scores = dict(gmm_scores(model, feats))  # computed once, reused for every weight
    config = DecodeConfig(beam=beam, max_active=max_active, frame_shift=0.01)
    return sweep(lambda: iter(scores.items()), graph_dir, refs, out_dir, weights, config, nj=nj)


def best_wer_line(decode_dir: PathLike) -> str:
    """The ``%WER`` line of a decode dir's ``best_wer``."""
    text = (Path(decode_dir) / "best_wer").read_text(encoding="utf-8")
    return next((line for line in text.splitlines() if line.startswith("%WER")), text.strip())


def make_graph(model, lang_dir: PathLike, g_fst: PathLike, out_dir: PathLike) -> Path:
    """HCLG for ``model`` with asrkit.graph, written to ``out_dir`` (skipped when already done)."""
    if not is_done(out_dir):
        make_graph_dir(lang_dir, g_fst, HmmModel(model.transition_model, model.tree, {}), out_dir)
    return Path(out_dir)
