"""Batched statistics accumulation and the ML update of a GMM-HMM (gmm-acc-stats-ali + gmm-est).

The bindings accumulate one frame per Python call (``AccumAmDiagGmm.accumulate_for_gmm``), and their
per-pdf accumulators are returned by copy (``get_acc``), so statistics cannot be written into them in
bulk. Instead the statistics are computed here in numpy: the frames of a job are grouped by pdf (one
stable sort), each pdf's Gaussian log-likelihoods are two matrix products
(``x @ (mu/var)^T - 0.5 x^2 @ (1/var)^T + gconst``), posteriors give the zeroth, first and second order
statistics in float64. :class:`GmmStats` objects are plain numpy, so jobs in other processes return
them and they are summed (``a + b``, :meth:`GmmStats.add`), like ``gmm-sum-accs``.

:func:`update_model` is Kaldi's ``MleDiagGmmUpdate`` (same rules: a Gaussian with occupancy at most
``min_gaussian_occupancy`` or weight at most ``min_gaussian_weight`` is not updated and is removed
unless it is the pdf's last one, variances floored at ``min_variance``), the transition model's
``mle_update``, then mixing-up to a total number of Gaussians (:mod:`asrkit.gmm.mixup`, seeded).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np

from asrkit.fst import kaldi_hmm_gmm
from asrkit.gmm.mixup import split_by_count
from asrkit.gmm.model import single_gauss
from asrkit.utils.blas import blas_threads

log = logging.getLogger(__name__)
_BLOCK = 200_000  # frames handled at once (bounds memory)


@dataclass
class GmmStats:
    """Per pdf: occupancy [G], sum x [G, D], sum x^2 [G, D] (float64); transition counts; totals."""

    occ: List[np.ndarray]
    x: List[np.ndarray]
    x2: List[np.ndarray]
    trans: np.ndarray  # [num_transition_ids + 1]
    loglike: float = 0.0
    frames: int = 0

    @classmethod
    def zeros(cls, params: Sequence[tuple], num_tids: int) -> "GmmStats":
        occ = [np.zeros(len(p[0])) for p in params]
        x = [np.zeros(p[1].shape) for p in params]
        return cls(occ, x, [a.copy() for a in x], np.zeros(num_tids + 1))

    def add(self, other: "GmmStats") -> "GmmStats":
        if len(other.occ) != len(self.occ):
            raise ValueError("GmmStats.add: different numbers of pdfs")
        for i in range(len(self.occ)):
            self.occ[i] += other.occ[i]
            self.x[i] += other.x[i]
            self.x2[i] += other.x2[i]
        self.trans += other.trans
        self.loglike += other.loglike
        self.frames += other.frames
        return self

    def __add__(self, other: "GmmStats") -> "GmmStats":
        out = GmmStats([a.copy() for a in self.occ], [a.copy() for a in self.x], [a.copy() for a in self.x2],
                       self.trans.copy(), self.loglike, self.frames)
        return out.add(other)

    def pdf_occs(self) -> np.ndarray:
        return np.array([o.sum() for o in self.occ])

    @property
    def loglike_per_frame(self) -> float:
        return self.loglike / self.frames if self.frames else float("nan")


def _logsumexp_post(L: np.ndarray):
    m = L.max(1, keepdims=True)
    p = np.exp(L - m)
    s = p.sum(1, keepdims=True)
    p /= s
    return (m + np.log(s)).reshape(-1), p


def accumulate(stats: GmmStats, params: Sequence[tuple], tid2pdf: np.ndarray, feats: Sequence[np.ndarray],
               alis: Sequence[np.ndarray]) -> GmmStats:
    """Add the statistics of utterances (features [T, D], alignments [T] of transition ids) to ``stats``.

    ``params`` from :func:`asrkit.gmm.model.gmm_params` (the model the posteriors come from). BLAS runs
    single-threaded here: the products are small, and OpenBLAS threads made them ~100x slower."""
    with blas_threads(1):
        return _accumulate(stats, params, tid2pdf, feats, alis)


def _accumulate(stats, params, tid2pdf, feats, alis) -> GmmStats:
    pending_f: List[np.ndarray] = []
    pending_a: List[np.ndarray] = []
    n = 0
    for f, a in zip(feats, alis):
        a = np.asarray(a, dtype=np.int64)
        if len(a) != len(f):
            raise ValueError(f"alignment of {len(a)} frames for {len(f)} feature frames")
        if len(a) and (a.min() < 1 or a.max() >= len(stats.trans)):
            raise ValueError(f"alignment holds transition ids outside 1..{len(stats.trans) - 1}")
        stats.trans += np.bincount(a, minlength=len(stats.trans))
        pending_f.append(f)
        pending_a.append(a)
        n += len(a)
        if n >= _BLOCK:
            _acc_block(stats, params, tid2pdf, pending_f, pending_a)
            pending_f, pending_a, n = [], [], 0
    if pending_f:
        _acc_block(stats, params, tid2pdf, pending_f, pending_a)
    return stats


def _acc_block(stats: GmmStats, params, tid2pdf, feats, alis) -> None:
    X = np.concatenate(feats).astype(np.float64, copy=False)
    pdf = np.asarray(tid2pdf)[np.concatenate(alis)]
    if (pdf < 0).any():
        raise ValueError("alignment holds transition id 0 or an id without a pdf")
    order = np.argsort(pdf, kind="stable")
    sp = pdf[order]
    starts = np.flatnonzero(np.r_[True, sp[1:] != sp[:-1]])
    ends = np.r_[starts[1:], len(sp)]
    for b, e in zip(starts, ends):
        p = int(sp[b])
        Xp = X[order[b:e]]
        Xp2 = Xp * Xp
        gc, mi, iv = params[p]
        L = Xp @ mi.T - 0.5 * (Xp2 @ iv.T) + gc
        if L.shape[1] == 1:
            ll = L[:, 0]
            stats.occ[p] += len(Xp)
            stats.x[p] += Xp.sum(0)
            stats.x2[p] += Xp2.sum(0)
        else:
            ll, post = _logsumexp_post(L)
            stats.occ[p] += post.sum(0)
            stats.x[p] += post.T @ Xp
            stats.x2[p] += post.T @ Xp2
        stats.loglike += float(ll.sum())
    stats.frames += len(X)


@dataclass
class UpdateConfig:
    min_gaussian_occupancy: float = 10.0
    min_gaussian_weight: float = 1e-5
    min_variance: float = 1e-3
    remove_low_count_gaussians: bool = True
    update_transitions: bool = True
    transition_floor: float = 0.01
    transition_mincount: float = 5.0
    perturb_factor: float = 0.01  # mixing up
    power: float = 0.2
    min_count: float = 20.0
    seed: int = 0  # of the mixing-up perturbation


@dataclass
class UpdateResult:
    loglike_per_frame: float
    frames: int
    gauss_removed: int = 0
    elements_floored: int = 0
    trans_impr_per_frame: float = 0.0
    num_gauss: int = 0
    pdfs_without_data: int = 0
    extra: dict = field(default_factory=dict)


def _update_gmm(g, occ, x, x2, cfg: UpdateConfig):
    """Kaldi's MleDiagGmmUpdate on one DiagGmm in place; returns (removed, floored)."""
    ng = len(occ)
    w = np.asarray(g.weights, dtype=np.float64).copy()
    inv_vars = np.asarray(g.inv_vars, dtype=np.float64)
    var = 1.0 / inv_vars
    mean = np.asarray(g.means_invvars, dtype=np.float64) * var
    tot = occ.sum()
    prob = occ / tot if tot > 0 else np.full(ng, 1.0 / ng)
    ok = (occ > cfg.min_gaussian_occupancy) & (prob > cfg.min_gaussian_weight)
    w[~ok] = np.maximum(prob[~ok], cfg.min_gaussian_weight)  # what Kaldi gives those it keeps
    floored = 0
    if ok.any():
        o = occ[ok][:, None]
        m = x[ok] / o
        v = x2[ok] / o - m * m
        floored = int((v < cfg.min_variance).sum())
        v = np.maximum(v, cfg.min_variance)
        w[ok], mean[ok], var[ok] = prob[ok], m, v
    g.set_weights(w.astype(np.float32))
    g.set_invvars_and_means((1.0 / var).astype(np.float32), mean.astype(np.float32))
    g.compute_gconsts()
    to_remove = []
    if cfg.remove_low_count_gaussians:
        for i in np.flatnonzero(~ok).tolist():
            if len(to_remove) < ng - 1:
                to_remove.append(i)
    if to_remove:
        g.remove_components(to_remove, True)
        g.compute_gconsts()
    return len(to_remove), floored


def update_model(model, stats: GmmStats, cfg: UpdateConfig = UpdateConfig(),
                 mixup: int = 0) -> UpdateResult:
    """ML re-estimation of ``model`` (a :class:`GmmModel`, changed in place), then mixing-up to ``mixup``
    Gaussians in total (0: none)."""
    am = model.am
    res = UpdateResult(stats.loglike_per_frame, stats.frames)
    if cfg.update_transitions and stats.trans.sum() > 0:
        impr, count = model.transition_model.mle_update(
            stats.trans, kaldi_hmm_gmm.MleTransitionUpdateConfig(floor=cfg.transition_floor,
                                                                 mincount=cfg.transition_mincount))
        res.trans_impr_per_frame = impr / count if count else 0.0
        model._info = None
    for p in range(am.num_pdfs):
        if stats.occ[p].sum() <= 0:
            res.pdfs_without_data += 1
        r, f = _update_gmm(am.get_pdf(p), stats.occ[p], stats.x[p], stats.x2[p], cfg)
        res.gauss_removed += r
        res.elements_floored += f
    if res.pdfs_without_data:
        log.info("%d of %d pdfs had no data", res.pdfs_without_data, am.num_pdfs)
    if mixup and mixup > am.num_gauss:
        split_by_count(am, stats.pdf_occs(), int(mixup), cfg.perturb_factor, cfg.power, cfg.min_count, cfg.seed)
    am.compute_gconsts()
    res.num_gauss = int(am.num_gauss)
    return res


def init_from_stats(model, stats: GmmStats, var_floor_frac: float = 0.01) -> None:
    """Set each pdf to one Gaussian from its pooled statistics (gmm-init-model from tree statistics);
    pdfs without data get the global mean/variance."""
    occ = np.array([o.sum() for o in stats.occ])
    tot_x = sum(x.sum(0) for x in stats.x)
    tot_x2 = sum(x.sum(0) for x in stats.x2)
    n = max(occ.sum(), 1.0)
    gmean = tot_x / n
    gvar = np.maximum(tot_x2 / n - gmean ** 2, 1e-3)
    am = kaldi_hmm_gmm.AmDiagGmm()
    for p in range(len(stats.occ)):
        c = occ[p]
        if c > 0:
            m = stats.x[p].sum(0) / c
            v = np.maximum(stats.x2[p].sum(0) / c - m * m, var_floor_frac * gvar)
        else:
            m, v = gmean, gvar
        am.add_pdf(single_gauss(m, v))
    model.am = am
