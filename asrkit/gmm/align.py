"""Forced alignment (gmm-align-compiled, align-compiled-mapped, align-equal-compiled) and the parallel job runner.

Alignment: the utterance's training graph (compiled without transition probabilities) gets the current
model's probabilities (``add_transition_probs``, transition scale 1.0, self-loop scale 0.1), then
``align_utterance_wrapper`` with a ``DecodableAmDiagGmmScaled`` (acoustic scale 0.1) searches it with
``beam``; where no final state is reached it retries once with ``retry_beam`` (counted as retried); if
that fails too the utterance is reported with its id and reason and left out of the statistics.
The search itself (:func:`align_decodable`) takes any decodable: :func:`align_scores` runs it over a
matrix of pdf log-likelihoods instead of the GMM (a network's realignment, :mod:`asrkit.senone.realign`).

Jobs: ``run_jobs`` splits the utterances into ``nj`` parts of about equal frames and runs them in a
fork pool; each job aligns (optionally) and accumulates statistics, and returns plain numpy results
that the parent sums. Features, graphs and models reach the workers through fork (no pickling).
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import time
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from asrkit.fst import kaldi_hmm_gmm, kaldifst
from asrkit.gmm.accumulate import GmmStats, accumulate
from asrkit.gmm.graphs import GraphCompiler, LangInfo
from asrkit.gmm.model import boost_silence, gmm_params

log = logging.getLogger(__name__)


@dataclass
class AlignOptions:
    beam: float = 10.0
    retry_beam: float = 40.0
    careful: bool = False
    acoustic_scale: float = 0.1
    transition_scale: float = 1.0
    self_loop_scale: float = 0.1
    boost_silence: float = 1.0


@dataclass
class AlignResult:
    alis: Dict[str, np.ndarray] = field(default_factory=dict)
    failed: Dict[str, str] = field(default_factory=dict)
    retried: List[str] = field(default_factory=list)
    loglike: float = 0.0  # alignment log-likelihood (acoustic scale 1, graph cost included), summed
    frames: int = 0
    seconds: float = 0.0
    stats: Optional[GmmStats] = None

    def merge(self, other: "AlignResult") -> "AlignResult":
        self.alis.update(other.alis)
        self.failed.update(other.failed)
        self.retried += other.retried
        self.loglike += other.loglike
        self.frames += other.frames
        self.seconds += other.seconds
        if other.stats is not None:
            self.stats = other.stats if self.stats is None else self.stats.add(other.stats)
        return self


def equal_align(graph, num_frames: int, seed: int = 0) -> Optional[np.ndarray]:
    """align-equal-compiled: a path of ``num_frames`` frames through the graph, or None if too short."""
    ok, path = kaldifst.equal_align(graph, num_frames, seed, 10)
    if not ok:
        return None
    ok, tids, _, _ = kaldifst.get_linear_symbol_sequence(path)
    if not ok or len(tids) != num_frames:
        return None
    return np.asarray(tids, dtype=np.int32)


def align_utterance(am, tm, graph, feats: np.ndarray, opts: AlignOptions, utt: str = ""):
    """Returns (alignment or None, reason, loglike, retried)."""
    dec = kaldi_hmm_gmm.DecodableAmDiagGmmScaled(am, tm, np.ascontiguousarray(feats, dtype=np.float32),
                                                 opts.acoustic_scale)
    return align_decodable(tm, graph, dec, len(feats), opts, utt)


def align_scores(tm, tid2pdf: np.ndarray, graph, scores: np.ndarray, opts: AlignOptions, utt: str = ""):
    """:func:`align_utterance` with another likelihood source: ``scores`` [T, num_pdfs] log-likelihoods
    (a network's log-posteriors minus log-priors, as Kaldi's align-compiled-mapped reads them), scaled by
    ``opts.acoustic_scale``. ``tid2pdf``: pdf per transition id (index 0 unused). Same return value."""
    scores = np.asarray(scores, dtype=np.float32)
    tid2pdf = np.asarray(tid2pdf)
    if scores.ndim != 2 or (len(tid2pdf) > 1 and scores.shape[1] <= int(tid2pdf[1:].max())):
        raise ValueError(f"utterance {utt}: scores of shape {scores.shape} do not cover the model's "
                         f"{int(tid2pdf[1:].max()) + 1} pdfs")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"utterance {utt}: scores contain NaN or inf")
    # DecodableCtc reads column tid - 1 for transition id tid (the decoder's convention, asrkit.decode)
    mat = np.ascontiguousarray(scores[:, tid2pdf[1:]] * np.float32(opts.acoustic_scale))
    return align_decodable(tm, graph, kaldi_hmm_gmm.DecodableCtc(mat), len(scores), opts, utt)


def align_decodable(tm, graph, decodable, num_frames: int, opts: AlignOptions, utt: str = ""):
    """gmm-align-compiled's search over any decodable already scaled by ``opts.acoustic_scale``: the
    model's transition probabilities added to a copy of ``graph``, ``beam`` then ``retry_beam``.
    Returns (alignment or None, reason, loglike, retried)."""
    fst = graph.copy()
    kaldi_hmm_gmm.add_transition_probs(trans_model=tm, disambig_syms=[], transition_scale=opts.transition_scale,
                                       self_loop_scale=opts.self_loop_scale, fst=fst)
    cfg = kaldi_hmm_gmm.AlignConfig(beam=opts.beam, retry_beam=opts.retry_beam, careful=opts.careful)
    done, err, retried, like, frames, ali, _ = kaldi_hmm_gmm.align_utterance_wrapper(
        cfg, utt, opts.acoustic_scale, fst, decodable, 0, 0, 0, 0.0, 0)
    if done and len(ali) == num_frames:
        return np.asarray(ali, dtype=np.int32), "", float(like), bool(retried)
    if equal_align(graph, num_frames) is None:
        reason = f"too short: {num_frames} frames cannot hold the transcript's HMM states"
    elif opts.retry_beam > opts.beam:
        reason = f"no final state reached with beam {opts.beam} nor retry beam {opts.retry_beam}"
    else:
        reason = f"no final state reached with beam {opts.beam} (no retry beam)"
    return None, reason, 0.0, bool(retried)


# ----------------------------------------------------------------------------- jobs

_CTX: dict = {}


def _job(utts: Sequence[str]) -> AlignResult:
    c = _CTX
    t0 = time.perf_counter()
    res = AlignResult()
    feats, graphs = c["feats"], c["graphs"]
    mode = c["mode"]
    for u in utts:
        f = feats[u]
        if mode == "equal":
            # a seed per utterance (Kaldi hashes the key): random paths differ across utterances
            a = equal_align(graphs[u], len(f), (zlib.crc32(u.encode()) + c.get("seed", 0)) & 0x7FFFFFFF)
            if a is None:
                res.failed[u] = f"too short for a flat-start alignment: {len(f)} frames"
                continue
        elif mode == "align":
            a, reason, like, retried = align_utterance(c["align_am"], c["tm"], graphs[u], f, c["opts"], u)
            if retried:
                res.retried.append(u)
            if a is None:
                res.failed[u] = reason
                continue
            res.loglike += like
        else:  # "acc": alignments given
            a = c["alis"].get(u)
            if a is None:
                continue
        res.alis[u] = a
        res.frames += len(f)
    if c.get("params") is not None:
        res.stats = GmmStats.zeros(c["params"], c["num_tids"])
        ok = [u for u in utts if u in res.alis]
        accumulate(res.stats, c["params"], c["tid2pdf"], [feats[u] for u in ok], [res.alis[u] for u in ok])
    res.seconds = time.perf_counter() - t0
    return res


def split_by_frames(utts: Sequence[str], lengths: Dict[str, int], nj: int) -> List[List[str]]:
    """``nj`` contiguous parts of about equal frame counts (none empty unless there are fewer utts)."""
    nj = max(1, min(nj, len(utts)))
    total = sum(lengths[u] for u in utts)
    parts: List[List[str]] = [[] for _ in range(nj)]
    acc = 0
    for u in utts:
        j = min(int(acc * nj / max(total, 1)), nj - 1)
        parts[j].append(u)
        acc += lengths[u]
    return [p for p in parts if p]


def run_jobs(utts: Sequence[str], feats: Dict[str, np.ndarray], *, graphs: Optional[dict] = None,
             mode: str = "align", model=None, align_am=None, opts: Optional[AlignOptions] = None,
             alis: Optional[Dict[str, np.ndarray]] = None, accumulate_stats: bool = True,
             nj: int = 1, seed: int = 0) -> AlignResult:
    """Align (``mode`` ``equal`` / ``align``) or take ``alis`` (``acc``), and accumulate statistics
    for ``model`` (when ``accumulate_stats``), in ``nj`` parallel jobs; results merged."""
    if mode not in ("equal", "align", "acc"):
        raise ValueError(f"mode {mode!r}")
    t0 = time.perf_counter()
    _CTX.clear()
    _CTX.update(feats=feats, graphs=graphs or {}, mode=mode, seed=seed, opts=opts or AlignOptions(),
                alis=alis or {}, tm=model.transition_model if model is not None else None,
                align_am=align_am if align_am is not None else (model.am if model is not None else None))
    if accumulate_stats:
        _CTX.update(params=gmm_params(model.am), tid2pdf=model.info.pdf,
                    num_tids=int(model.transition_model.num_transition_ids))
    parts = split_by_frames(list(utts), {u: len(feats[u]) for u in utts}, nj)
    out = AlignResult()
    try:
        if len(parts) <= 1:
            for p in parts:
                out.merge(_job(p))
        else:
            with mp.get_context("fork").Pool(len(parts)) as pool:
                for r in pool.imap(_job, parts):
                    out.merge(r)
    finally:
        _CTX.clear()
    if accumulate_stats and out.stats is None:
        out.stats = GmmStats.zeros(gmm_params(model.am), int(model.transition_model.num_transition_ids))
    out.seconds = time.perf_counter() - t0
    for u, r in sorted(out.failed.items()):
        log.warning("utterance %s left out: %s", u, r)
    return out


def align_corpus(model, corpus, lang, opts: AlignOptions = AlignOptions(), nj: int = 1) -> AlignResult:
    """Align every utterance of a :class:`~asrkit.gmm.data.Corpus` (with silence boosting)."""
    if not isinstance(lang, LangInfo):
        lang = LangInfo.read(lang)
    graphs, failed = GraphCompiler(model, lang).compile_all(corpus.text)
    am = boost_silence(model, lang.silence, opts.boost_silence)
    res = run_jobs([u for u in corpus.utts if u in graphs], corpus.feats, graphs=graphs, mode="align",
                   model=model, align_am=am, opts=opts, accumulate_stats=False, nj=nj)
    res.failed.update(failed)
    return res
