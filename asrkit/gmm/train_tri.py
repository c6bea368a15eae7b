"""Triphone GMM-HMM training from monophone alignments (Kaldi's steps/train_deltas.sh).

1. Tree statistics per (left, centre, right, pdf-class) from the alignments (acc-tree-stats; silence
   context-independent), questions from clustering the phones (cluster-phones + extra questions
   silence / non-silence), a tree of at most ``num_leaves`` leaves (build-tree) — all from
   :mod:`asrkit.tree`. A caller can pass its own ``ContextDependency`` (``tree=``) or a function
   ``tree_fn(stats, lang, config) -> ContextDependency`` instead.
2. ``TransitionModel(tree, topo)``; the alignments are converted to it (convert-ali: same phones, same
   HMM states, same transitions, new pdfs from the tree with each frame's phone context); every leaf
   gets one Gaussian from its frames' pooled statistics (gmm-init-model) -> ``1.mdl``.
3. EM iterations 1 .. num_iters-1: realignment at ``realign_iters`` (default 10, 20, 30 for 35
   iterations; beam 10 / retry 40), mixing up from ``num_leaves`` to ``tot_gauss`` Gaussians by
   ``max_iter_inc``.
4. ``final.mdl``, ``tree`` (Kaldi binary), ``tree_stats.npz``, final alignments of every utterance
   ``ali.pt`` (transition ids and per-frame phones), ``failed.txt``, ``history.json``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np

from asrkit.fst import kaldi_hmm_gmm
from asrkit.gmm.accumulate import UpdateConfig, init_from_stats
from asrkit.gmm.align import AlignOptions, run_jobs
from asrkit.gmm.data import Corpus
from asrkit.gmm.graphs import GraphCompiler, LangInfo
from asrkit.gmm.model import GmmModel, global_stats, single_gauss
from asrkit.gmm.trainer import (Schedule, finish, latest_iter, load_ali_state, load_alignments, run_em, start_system,
                                save_ali_state, tri_realign_iters)
from asrkit.hmm import TransitionInfo, read_topo, write_tree
from asrkit.tree.build import build_tree, default_roots
from asrkit.tree.kaldi_format import to_kaldi
from asrkit.tree.questions import make_questions
from asrkit.tree.stats import accumulate_tree_stats
from asrkit.tree.stats import frame_contexts as phone_contexts

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass
class TriConfig:
    num_leaves: int = 2000
    tot_gauss: int = 10000
    num_iters: int = 35
    realign_iters: Optional[Sequence[int]] = None  # default: 10 20 30 for 35 iterations
    max_iter_inc: Optional[int] = None  # default: 25 of 35 (5/7 of num_iters)
    boost_silence: float = 1.25
    beam: float = 10.0
    retry_beam: float = 40.0
    power: float = 0.25
    tree_thresh: float = 300.0  # build-tree --thresh (minimum gain of a split)
    tree_min_count: float = 100.0  # frames each side of a split
    cluster_pdf_classes: Optional[Sequence[int]] = (1,)  # cluster-phones' --pdf-class-list
    nj: int = 1
    seed: int = 0
    force: bool = False


# ----------------------------------------------------------------------------- tree statistics


def frame_contexts(ali: np.ndarray, info: TransitionInfo, context_width: int, central_position: int) -> np.ndarray:
    """[T, N] phone context of every frame of an alignment (0 beyond the utterance), as convert-ali /
    acc-tree-stats: :func:`asrkit.tree.stats.frame_contexts` of its phones and phone starts."""
    ali = np.asarray(ali, dtype=np.int64)
    return phone_contexts(info.phone[ali], context_width=context_width, central_position=central_position,
                          phone_starts=info.phone_starts(ali))


def tree_stats(model: GmmModel, feats: Dict[str, np.ndarray], alis: Dict[str, np.ndarray], silence: Sequence[int],
               context_width: int = 3, central_position: int = 1):
    """asrkit.tree TreeStats from alignments of ``model`` (silence phones context-independent)."""
    info = model.info
    utts = [u for u in alis if u in feats]
    a = [np.asarray(alis[u], dtype=np.int64) for u in utts]
    return accumulate_tree_stats(
        np.concatenate([info.phone[x] for x in a]), np.concatenate([info.pdf_class[x] for x in a]),
        np.concatenate([feats[u] for u in utts]), context_width=context_width, central_position=central_position,
        phone_starts=np.concatenate([info.phone_starts(x) for x in a]), utt_lengths=[len(x) for x in a],
        ci_phones=list(silence))


def build_tree_from_stats(stats, lang: LangInfo, config: TriConfig):
    """Questions + tree with asrkit.tree; returns (ContextDependency, BuildResult)."""
    topo = read_topo(lang.topo_text)
    phones = list(topo.phones)
    p2n = topo.get_phone_to_num_pdf_classes()
    npc = {p: int(p2n[p]) for p in phones}
    sil = [p for p in lang.silence if p in npc]
    nonsil = [p for p in phones if p not in sil]
    cluster_classes = config.cluster_pdf_classes
    if cluster_classes is not None and max(cluster_classes) >= max(npc.values()):
        cluster_classes = None
    questions = make_questions(stats, phone_sets=[(p,) for p in stats.phones().tolist() if p in nonsil],
                               extra_questions=[tuple(sil), tuple(nonsil)] if sil else None,
                               cluster_pdf_classes=cluster_classes, seed=config.seed)
    res = build_tree(stats, questions, default_roots(phones, sil), num_pdf_classes=npc, silence_phones=sil,
                     max_leaves=config.num_leaves, thresh=config.tree_thresh, min_count=config.tree_min_count)
    return to_kaldi(res.tree), res


# ----------------------------------------------------------------------------- convert-ali


class AlignmentConverter:
    """convert-ali: alignments of ``old`` to ``new`` (same topology and phones, another tree)."""

    def __init__(self, old_info: TransitionInfo, new_tm, new_tree):
        self.old = old_info
        self.tm = new_tm
        self.tree = new_tree
        self.N, self.P = int(new_tree.context_width), int(new_tree.central_position)
        tuples = [t.__getstate__() for t in new_tm.tuples]
        self.state_of = {tuple(int(v) for v in t): i + 1 for i, t in enumerate(tuples)}
        self.state2id = np.asarray(new_tm.state2id, dtype=np.int64)
        self.topo = new_tm.topo
        self._pdf: Dict[tuple, int] = {}
        self._entry: Dict[int, object] = {}

    def _compute(self, ctx: tuple, pdf_class: int) -> int:
        key = (ctx, pdf_class)
        if key not in self._pdf:
            ok, pdf = self.tree.compute(list(ctx), int(pdf_class))
            if not ok:
                raise ValueError(f"the new tree has no pdf for context {ctx}, pdf-class {pdf_class}")
            self._pdf[key] = int(pdf)
        return self._pdf[key]

    def convert(self, ali: np.ndarray) -> np.ndarray:
        ali = np.asarray(ali, dtype=np.int64)
        ctx = frame_contexts(ali, self.old, self.N, self.P)
        out = np.empty(len(ali), dtype=np.int32)
        o = self.old
        cache: Dict[tuple, int] = {}
        for t in range(len(ali)):
            tid = int(ali[t])
            c = tuple(int(v) for v in ctx[t])
            key = (c, tid)
            new = cache.get(key)
            if new is None:
                ph, hs = int(o.phone[tid]), int(o.hmm_state[tid])
                if ph not in self._entry:
                    self._entry[ph] = self.topo.topology_for_phone(ph)
                s = self._entry[ph][hs]
                fpdf = self._compute(c, s.forward_pdf_class)
                spdf = self._compute(c, s.self_loop_pdf_class)
                state = self.state_of.get((ph, hs, fpdf, spdf))
                if state is None:
                    raise ValueError(f"no transition state ({ph}, {hs}, {fpdf}, {spdf}) in the new model")
                new = int(self.state2id[state]) + int(o.trans_index[tid])
                cache[key] = new
            out[t] = new
        return out


# ----------------------------------------------------------------------------- training


def init_tri_model(mono: GmmModel, tree, corpus: Corpus, alis: Dict[str, np.ndarray], nj: int = 1):
    """TransitionModel for the tree, converted alignments, one Gaussian per leaf from its frames."""
    topo = read_topo(mono.topo_text)
    tm = kaldi_hmm_gmm.TransitionModel(tree, topo)
    conv = AlignmentConverter(mono.info, tm, tree)
    new_alis = {u: conv.convert(a) for u, a in alis.items() if u in corpus.feats}
    mean, var = global_stats([corpus.feats[u] for u in new_alis])
    am = kaldi_hmm_gmm.AmDiagGmm()
    g = single_gauss(mean, var)
    for _ in range(tree.num_pdfs):
        am.add_pdf(g)
    model = GmmModel(am, tm, tree, mono.topo_text, {"type": "tri"})
    r = run_jobs(list(new_alis), corpus.feats, mode="acc", model=model, alis=new_alis, nj=nj)
    init_from_stats(model, r.stats)
    return model, new_alis


def train_tri(corpus: Corpus, lang: Union[LangInfo, PathLike], out_dir: PathLike, ali: Union[PathLike, dict],
              config: TriConfig = TriConfig(), mono: Optional[GmmModel] = None, tree=None,
              tree_fn: Optional[Callable] = None) -> GmmModel:
    """Train (or resume, or load a finished) triphone system in ``out_dir``.

    ``ali``: the monophone system's directory (``final.mdl`` + ``ali.pt``), an ``ali.pt`` path, or a loaded
    alignment dict (then ``mono`` must be given). ``tree`` / ``tree_fn``: see the module doc."""
    out, lang, finished = start_system(out_dir, lang, config.force)
    if finished is not None:
        return finished
    opts = AlignOptions(beam=config.beam, retry_beam=config.retry_beam, boost_silence=config.boost_silence)
    upd = UpdateConfig(power=config.power, seed=config.seed)
    n_iters = max(2, config.num_iters)
    realign = list(config.realign_iters) if config.realign_iters is not None else tri_realign_iters(n_iters)

    latest = latest_iter(out)
    if latest is not None and latest >= 1 and (out / "ali_train.pt").exists() and latest <= n_iters:
        model = GmmModel.load(out / f"{latest}.mdl")
        st = load_ali_state(out)
        alis, failed, ali_iter, start = st["alis"], st["failed"], st["iter"], latest
        history = model.meta.get("history", [])
        log.info("resuming triphone training in %s from %d.mdl", out, latest)
    else:
        if isinstance(ali, dict):
            ali_obj = ali
            if mono is None:
                raise ValueError("train_tri: give the monophone model with an alignment dict")
        else:
            ali_path = Path(ali)
            ali_obj = load_alignments(ali_path)
            if mono is None:
                mdl = ali_path / "final.mdl" if ali_path.is_dir() else Path(ali_obj.get("model") or "")
                mono = GmmModel.load(mdl)
        mono_alis = {u: a for u, a in ali_obj["alis"].items() if u in corpus.feats}
        if not mono_alis:
            raise ValueError("no alignment matches the given cuts")
        t0 = time.perf_counter()
        stats = None
        if tree is None:
            stats = tree_stats(mono, corpus.feats, mono_alis, lang.silence)
            stats.save(out / "tree_stats.npz")
            if tree_fn is not None:
                tree = tree_fn(stats, lang, config)
            else:
                tree, res = build_tree_from_stats(stats, lang, config)
        write_tree(tree, out / "tree")
        log.info("tri: tree with %d leaves (N=%d, P=%d) from %d frames of statistics in %.2f s", tree.num_pdfs,
                 tree.context_width, tree.central_position, int(stats.total_count) if stats is not None else 0,
                 time.perf_counter() - t0)
        model, alis = init_tri_model(mono, tree, corpus, mono_alis, config.nj)
        model.meta.update(type="tri", iter=1, start_gauss=model.num_pdfs)
        failed = {u: v for u, v in ali_obj.get("failed", {}).items()}
        save_ali_state(out, 0, alis, failed)
        model.save(out / "1.mdl")
        ali_iter, start, history = 0, 1, []
    graphs, graph_failed = GraphCompiler(model, lang).compile_all(corpus.text)
    graphs = {u: g for u, g in graphs.items() if u in corpus.feats}
    failed = {**graph_failed, **failed}
    start_gauss = model.meta.get("start_gauss", model.num_pdfs)
    max_inc = config.max_iter_inc if config.max_iter_inc is not None else max(1, (5 * n_iters) // 7)
    sched = Schedule(n_iters, realign, start_gauss, max(config.tot_gauss, start_gauss), max_inc)
    model, alis, failed, history = run_em(model, corpus.feats, graphs, alis, failed, out, sched, lang.silence,
                                          opts, upd, start, config.nj, "tri", ali_iter, history)
    return finish(model, corpus.feats, graphs, failed, out, lang.silence, opts, config.nj, "tri")
