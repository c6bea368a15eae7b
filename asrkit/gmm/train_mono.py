"""Monophone GMM-HMM training from a flat start (Kaldi's steps/train_mono.sh).

1. ``0.mdl``: monophone tree from the topology, every pdf one Gaussian with the global mean/variance
   (gmm-init-mono).
2. Training graphs per utterance; flat start: ``kaldifst.equal_align`` (align-equal-compiled); statistics
   and a first update with ``min_gaussian_occupancy=3`` -> ``1.mdl``.
3. EM iterations 1 .. num_iters-1 with realignment at 1..10, 12, 14, ..., (silence boosted by
   ``boost_silence``, beam 6 / retry beam 24 as train_mono.sh) and mixing-up to ``tot_gauss`` in total
   by iteration ``max_iter_inc`` (default 3/4 of num_iters: 30 of 40 as train_mono.sh).
4. ``final.mdl``, final alignments ``ali.pt``, ``failed.txt``, ``history.json``; ``.final.mdl.done``.

Re-running resumes from the last complete ``<N>.mdl`` (and ``ali_train.pt``); a finished directory is
left alone unless ``force``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from asrkit.gmm.accumulate import UpdateConfig, update_model
from asrkit.gmm.align import AlignOptions, run_jobs
from asrkit.gmm.data import Corpus
from asrkit.gmm.graphs import GraphCompiler, LangInfo
from asrkit.gmm.model import GmmModel, global_stats, init_mono
from asrkit.gmm.trainer import (IterRecord, Schedule, finish, latest_iter, load_ali_state, log_iter,
                                mono_realign_iters, run_em, save_ali_state, start_system)

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass
class MonoConfig:
    num_iters: int = 40
    tot_gauss: int = 1000
    realign_iters: Optional[Sequence[int]] = None  # default: train_mono.sh's 1..10, 12, 14, ...
    max_iter_inc: Optional[int] = None  # default: 3/4 of num_iters (train_mono.sh: 30 of 40)
    boost_silence: float = 1.25
    beam: float = 6.0
    retry_beam: float = 24.0
    power: float = 0.25
    nj: int = 1
    seed: int = 0
    force: bool = False


def train_mono(corpus: Corpus, lang: Union[LangInfo, PathLike], out_dir: PathLike,
               config: MonoConfig = MonoConfig()) -> GmmModel:
    """Train (or resume, or load a finished) monophone system in ``out_dir``; returns the final model."""
    out, lang, finished = start_system(out_dir, lang, config.force)
    if finished is not None:
        return finished
    opts = AlignOptions(beam=config.beam, retry_beam=config.retry_beam, boost_silence=config.boost_silence)
    upd = UpdateConfig(power=config.power, seed=config.seed)
    n_iters = max(1, config.num_iters)

    model0: Optional[GmmModel] = None
    latest = latest_iter(out)
    resumable = latest is not None and latest >= 1 and (out / "ali_train.pt").exists() and latest <= n_iters
    if resumable:
        model = GmmModel.load(out / f"{latest}.mdl")
        st = load_ali_state(out)
        alis, failed, ali_iter, start = st["alis"], st["failed"], st["iter"], latest
        history = model.meta.get("history", [])
        log.info("resuming monophone training in %s from %d.mdl (alignments of iteration %d)", out, latest,
                 ali_iter)
        start_gauss = model.meta.get("start_gauss", model.num_pdfs)
    else:
        mean, var = global_stats(list(corpus.feats.values()))
        model0 = init_mono(lang.topo_text, mean, var)
        model0.meta.update(type="mono", iter=0, dim=int(len(mean)), start_gauss=model0.num_pdfs)
        model0.save(out / "0.mdl")
        model, ali_iter, history, start = model0.copy(), 0, [], 1
        start_gauss = model0.num_pdfs
    graphs, graph_failed = GraphCompiler(model, lang).compile_all(corpus.text)
    graphs = {u: g for u, g in graphs.items() if u in corpus.feats}
    if not graphs:
        raise ValueError("no utterance has a training graph (see the warnings above)")
    sched = Schedule(n_iters, list(config.realign_iters) if config.realign_iters is not None
                     else mono_realign_iters(n_iters), start_gauss, config.tot_gauss,
                     config.max_iter_inc if config.max_iter_inc is not None else max(1, (3 * n_iters) // 4))

    if not resumable:
        t0 = time.perf_counter()
        r = run_jobs(list(graphs), corpus.feats, graphs=graphs, mode="equal", model=model, nj=config.nj,
                     seed=config.seed)
        alis, failed = r.alis, {**graph_failed, **r.failed}
        if not alis:
            raise ValueError("flat start failed for every utterance (see the warnings above)")
        flat_upd = UpdateConfig(min_gaussian_occupancy=3.0, power=config.power, seed=config.seed)
        res = update_model(model, r.stats, flat_upd, mixup=sched.num_gauss(0))
        rec = IterRecord(iter=0, frames=res.frames, loglike_per_frame=res.loglike_per_frame,
                         num_gauss=res.num_gauss, realigned=True, failed=len(r.failed),
                         seconds=round(time.perf_counter() - t0, 3))
        history = [rec.__dict__]
        model.meta.update(iter=1, history=history)
        save_ali_state(out, 0, alis, failed)
        model.save(out / "1.mdl")
        log_iter(rec, "mono(flat start)")
    else:
        failed = {**graph_failed, **failed}

    model, alis, failed, history = run_em(model, corpus.feats, graphs, alis, failed, out, sched, lang.silence,
                                          opts, upd, start, config.nj, "mono", ali_iter, history)
    return finish(model, corpus.feats, graphs, failed, out, lang.silence, opts, config.nj, "mono")
