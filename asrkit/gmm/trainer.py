"""The EM loop shared by the monophone and triphone systems (Kaldi's train_mono.sh / train_deltas.sh).

Iteration ``x`` (from ``start``) realigns with the silence-boosted model ``x`` if ``x`` is in the
realignment schedule, accumulates statistics of model ``x`` over the current alignments (in ``nj``
jobs), re-estimates, mixes up to the iteration's Gaussian target, and writes ``<x+1>.mdl``. The
alignment state is kept in ``ali_train.pt`` (``{"iter", "alis", "failed"}``), so that a re-run resumes
from the last complete model. Each iteration logs one line: frames, log-likelihood per frame under the
model being re-estimated, Gaussians, failed / retried alignments, seconds.

Alignment files (``ali.pt``, written by :func:`save_alignments`)::

    {"alis": {utt: int32 [T] transition ids}, "phones": {utt: int32 [T] phone ids},
     "failed": {utt: reason}, "frame_shift": 0.01, "model": "<path of the model that aligned>"}
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from asrkit.gmm.accumulate import UpdateConfig, update_model
from asrkit.gmm.align import AlignOptions, run_jobs
from asrkit.gmm.graphs import LangInfo
from asrkit.gmm.model import GmmModel, boost_silence
from asrkit.utils.atomic import atomic_path, atomic_write_text, done_marker, is_done, mark_done

log = logging.getLogger(__name__)
PathLike = Union[str, Path]

KALDI_MONO_REALIGN = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38]


def mono_realign_iters(num_iters: int) -> List[int]:
    """train_mono.sh's schedule: 1..10, 12, 14, ..., 20, 23, ..., 38 (then every 3), below ``num_iters``."""
    extra = list(range(41, num_iters, 3))
    return [x for x in KALDI_MONO_REALIGN + extra if x < num_iters]


def tri_realign_iters(num_iters: int) -> List[int]:
    """train_deltas.sh: 10 20 30 for 35 iterations; every num_iters/3.5 otherwise."""
    step = max(1, int(round(num_iters / 3.5)))
    return list(range(step, num_iters, step))


@dataclass
class Schedule:
    num_iters: int
    realign_iters: Sequence[int]
    start_gauss: int
    tot_gauss: int
    max_iter_inc: int

    def num_gauss(self, x: int) -> int:
        """Mix-up target used by the re-estimation of iteration ``x`` (x >= 1), as train_mono.sh."""
        inc = max(0, (self.tot_gauss - self.start_gauss) // max(self.max_iter_inc, 1))
        return self.start_gauss + inc * min(max(x - 1, 0), self.max_iter_inc)


def latest_iter(out_dir: PathLike) -> Optional[int]:
    its = [int(m.group(1)) for p in Path(out_dir).glob("*.mdl") if (m := re.fullmatch(r"(\d+)\.mdl", p.name))]
    return max(its) if its else None


def save_ali_state(out_dir: Path, x, alis, failed) -> None:
    import torch  # not at the top: torch only when alignments are saved or loaded (import cost, asrkit.gmm doc)

    with atomic_path(out_dir / "ali_train.pt") as tmp:
        torch.save({"iter": x, "alis": alis, "failed": failed}, tmp)


def load_ali_state(out_dir: Path) -> dict:
    import torch  # not at the top: torch only when alignments are saved or loaded (import cost, asrkit.gmm doc)

    return torch.load(out_dir / "ali_train.pt", weights_only=False)


def save_alignments(path: PathLike, model: GmmModel, alis: Dict[str, np.ndarray], failed: Dict[str, str],
                    model_path: str = "") -> Path:
    import torch  # not at the top: torch only when alignments are saved or loaded (import cost, asrkit.gmm doc)

    info = model.info
    phones = {u: info.phone[np.asarray(a, dtype=np.int64)].astype(np.int32) for u, a in alis.items()}
    with atomic_path(path) as tmp:
        torch.save({"alis": {u: np.asarray(a, dtype=np.int32) for u, a in alis.items()}, "phones": phones,
                    "failed": dict(failed), "frame_shift": 0.01, "model": model_path}, tmp)
    return Path(path)


def load_alignments(path: PathLike) -> dict:
    import torch  # not at the top: torch only when alignments are saved or loaded (import cost, asrkit.gmm doc)

    p = Path(path)
    if p.is_dir():
        p = p / "ali.pt"
    if not p.exists():
        raise FileNotFoundError(f"alignments not found: {p}")
    obj = torch.load(p, weights_only=False)
    if not isinstance(obj, dict) or "alis" not in obj:
        raise ValueError(f"{p}: not an alignment file (needs 'alis')")
    return obj


@dataclass
class IterRecord:
    iter: int
    frames: int
    loglike_per_frame: float
    num_gauss: int
    realigned: bool = False
    failed: int = 0
    retried: int = 0
    seconds: float = 0.0
    align_seconds: float = 0.0


def log_iter(r: IterRecord, name: str) -> None:
    log.info("%s iter %d: %d frames, log-like/frame %.4f, %d gauss%s, %.2f s", name, r.iter, r.frames,
             r.loglike_per_frame, r.num_gauss,
             f", realigned ({r.failed} failed, {r.retried} retried)" if r.realigned else "", r.seconds)


def run_em(model: GmmModel, feats: Dict[str, np.ndarray], graphs: dict, alis: Dict[str, np.ndarray],
           failed: Dict[str, str], out_dir: Path, sched: Schedule, silence: Sequence[int], opts: AlignOptions,
           upd: UpdateConfig, start: int, nj: int = 1, name: str = "gmm", ali_iter: int = -1,
           history: Optional[List[dict]] = None) -> tuple:
    """Iterations ``start .. num_iters-1``; returns (model, alis, failed, history)."""
    history = list(history or [])
    realign = set(sched.realign_iters)
    for x in range(start, sched.num_iters):
        t0 = time.perf_counter()
        rec = IterRecord(iter=x, frames=0, loglike_per_frame=float("nan"), num_gauss=0)
        if x in realign and ali_iter != x:
            am_b = boost_silence(model, silence, opts.boost_silence)
            r = run_jobs(list(graphs), feats, graphs=graphs, mode="align", model=model, align_am=am_b, opts=opts,
                         nj=nj)
            alis, failed_now = r.alis, r.failed
            failed = {**{u: v for u, v in failed.items() if u not in graphs}, **failed_now}
            save_ali_state(out_dir, x, alis, failed)
            ali_iter = x
            rec.realigned, rec.failed, rec.retried = True, len(failed_now), len(r.retried)
            rec.align_seconds = r.seconds
        else:
            r = run_jobs([u for u in graphs if u in alis], feats, mode="acc", model=model, alis=alis, nj=nj)
        res = update_model(model, r.stats, upd, mixup=sched.num_gauss(x))
        rec.frames, rec.loglike_per_frame, rec.num_gauss = res.frames, res.loglike_per_frame, res.num_gauss
        rec.seconds = round(time.perf_counter() - t0, 3)
        history.append(asdict(rec))
        model.meta.update(iter=x + 1, history=history)
        model.save(out_dir / f"{x + 1}.mdl")
        log_iter(rec, name)
    return model, alis, failed, history


def finish(model: GmmModel, feats, graphs, failed, out_dir: Path, silence, opts: AlignOptions, nj: int,
           name: str) -> GmmModel:
    """final.mdl, final alignments of every utterance (ali.pt), failed.txt, history.json, done marker."""
    model.save(out_dir / "final.mdl")
    am_b = boost_silence(model, silence, opts.boost_silence)
    r = run_jobs(list(graphs), feats, graphs=graphs, mode="align", model=model, align_am=am_b, opts=opts,
                 accumulate_stats=False, nj=nj)
    all_failed = {**{u: v for u, v in failed.items() if u not in graphs}, **r.failed}
    save_alignments(out_dir / "ali.pt", model, r.alis, all_failed, str(out_dir / "final.mdl"))
    atomic_write_text(out_dir / "failed.txt", "".join(f"{u} {v}\n" for u, v in sorted(all_failed.items())))
    atomic_write_text(out_dir / "history.json", json.dumps(model.meta.get("history", []), indent=1) + "\n")
    log.info("%s: final alignment of %d utterances (%d failed, %d retried) in %.2f s (%.0f frames/s)", name,
             len(r.alis), len(r.failed), len(r.retried), r.seconds, r.frames / max(r.seconds, 1e-9))
    mark_done(out_dir / "final.mdl")
    return model


def start_system(out_dir, lang, force: bool):
    """The prologue of a GMM training run: ``(out, LangInfo, finished model or None)``. A finished system
    (``final.mdl`` marked done) is loaded unless ``force``, which clears its models and alignments."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(lang, LangInfo):
        lang = LangInfo.read(lang)
    if is_done(out / "final.mdl") and not force:
        log.info("%s/final.mdl is done; not retraining (force to redo)", out)
        return out, lang, GmmModel.load(out / "final.mdl")
    if force:
        done_marker(out / "final.mdl").unlink(missing_ok=True)
        for p in out.glob("*.mdl"):
            p.unlink()
        (out / "ali_train.pt").unlink(missing_ok=True)
    return out, lang, None
