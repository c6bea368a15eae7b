"""Realignment of labelled sets with a trained network: new senone targets in stage 6's format.

Kaldi's nnet realignment (``steps/nnet/align.sh``: ``nnet-forward --class-frame-counts`` piped into
``align-compiled-mapped``): each utterance is force-aligned through its transcript's training graph, here
at 30 ms over the senone model (``<senone>/final.mdl``: the one-state topology and the senone tree, so
the graph's pdfs are the network's outputs), with a network's log-posteriors minus log-priors as pseudo
log-likelihoods, scaled by the acoustic scale (0.1, as the GMM alignment). The search is the GMM
alignment's own (:func:`asrkit.gmm.align_scores`, transition scale 1.0, self-loop scale 0.1, beam then
retry beam); only the likelihood source differs. This layer does not run networks: the caller passes a
``scorer`` (cut -> ``[T, num_senones]`` scores), e.g. :class:`asrkit.nnet.infer.PosteriorScorer`.

An alignment's transition ids map to senone ids (pdfs) frame by frame: T = ceil(n/3) targets, the
frame rule's length, because the network scores exactly the stacked frames. An utterance without a
usable transcript, whose graph cannot be compiled or whose alignment fails is left out: counted, logged
with its id and reason and listed in ``<out>/left_out_<set>.txt``, as stage 6 does.

Output ``<out>`` is a senone dir that the network stages read like ``exp/senone``: ``cuts_<set>.jsonl.gz``
+ ``targets/<set>/`` (:func:`asrkit.senone.stage.write_targets`), ``senone_counts.npy`` and
``occupancy.txt`` from the realigned training set (the priors follow the targets, as Kaldi recounts
``ali_train_pdf.counts`` after realigning), copies of ``tree`` and ``final.mdl``, ``graph`` a link to the
source's (the same tree, so the same HCLG), and ``realign.json`` (what aligned, failed, and the share of
frames whose senone changed against the source's targets).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from asrkit.data.lazy import open_cuts
from asrkit.features.stack import num_stacked_frames
from asrkit.gmm.align import AlignOptions, align_scores
from asrkit.gmm.graphs import GraphCompiler, LangInfo
from asrkit.hmm import TransitionInfo, load_model
from asrkit.senone.stage import TARGETS_FIELD, SetData, occupancy_text, write_targets
from asrkit.utils.atomic import atomic_path, atomic_write_text, mark_done, up_to_date

log = logging.getLogger(__name__)
PathLike = Union[str, Path]
Scorer = Callable[[object], np.ndarray]


@dataclass
class RealignConfig:
    # align-compiled-mapped's defaults in Kaldi's steps/nnet/align.sh, the GMM alignment's too
    acoustic_scale: float = 0.1
    beam: float = 10.0
    retry_beam: float = 40.0
    transition_scale: float = 1.0
    self_loop_scale: float = 0.1
    train_set: str = "train_sup"  # whose realigned targets give the priors

    def align_options(self) -> AlignOptions:
        return AlignOptions(beam=self.beam, retry_beam=self.retry_beam, acoustic_scale=self.acoustic_scale,
                            transition_scale=self.transition_scale, self_loop_scale=self.self_loop_scale)


@dataclass
class RealignSummary:
    sets: Dict[str, Dict[str, float]] = field(default_factory=dict)  # set -> counts, changed share
    left_out: Dict[str, Dict[str, str]] = field(default_factory=dict)  # set -> {cut: reason}
    seconds: float = 0.0


def _words(cut) -> List[str]:
    return " ".join(s.text for s in cut.supervisions if s.text).split()


def realign_cuts(cuts: Sequence, scorer: Scorer, model, lang: LangInfo,
                 config: RealignConfig = RealignConfig()):
    """``(targets {cut: int16 [T]}, left_out {cut: reason}, retried [cut])`` of ``cuts`` (fbank cuts with
    transcripts) aligned with ``scorer``'s scores through ``model``'s (``final.mdl``: transition model and
    tree) training graphs of ``lang``."""
    tm = model.transition_model
    tid2pdf = TransitionInfo.from_model(tm).pdf
    num_pdfs = int(tm.num_pdfs)
    if num_pdfs > np.iinfo(np.int16).max + 1:
        raise ValueError(f"{num_pdfs} senones do not fit int16 targets")
    compiler = GraphCompiler(model, lang)
    opts = config.align_options()
    targets: Dict[str, np.ndarray] = {}
    left: Dict[str, str] = {}
    retried: List[str] = []
    for cut in cuts:
        words = _words(cut)
        if not words:
            left[cut.id] = "no transcript"
            continue
        oov = sorted({w for w in words if w not in lang.words})
        if oov:  # the OOV word's garbage phone would be aligned instead: stage 6 leaves these out too
            left[cut.id] = f"words missing from the lexicon: {' '.join(oov[:10])}"
            continue
        try:
            graph = compiler.compile(words, cut.id)
        except Exception as e:  # noqa: BLE001 - counted and reported, never silently dropped
            left[cut.id] = f"graph compilation failed: {e}"
            continue
        scores = np.asarray(scorer(cut), dtype=np.float32)
        T = num_stacked_frames(int(cut.features.num_frames))
        if scores.shape != (T, num_pdfs):
            raise ValueError(f"cut {cut.id}: scores of shape {scores.shape}, expected ({T}, {num_pdfs}): T = "
                             f"ceil(n/3) stacked frames of n = {cut.features.num_frames}, one column per senone")
        ali, reason, _, was_retried = align_scores(tm, tid2pdf, graph, scores, opts, cut.id)
        if was_retried:
            retried.append(cut.id)
        if ali is None:
            left[cut.id] = f"alignment failed: {reason}"
            continue
        targets[cut.id] = tid2pdf[ali].astype(np.int16)
    for u, r in sorted(left.items()):
        log.warning("cut %s left out of the realigned targets: %s", u, r)
    return targets, left, retried


def _copy_model_files(src: Path, out: Path) -> None:
    for name in ("tree", "final.mdl"):
        # copied only when they differ: a rewritten tree would make the networks trained on this dir look
        # stale to the recipe (utils/shared_stages.sh's nnet_train compares times)
        if (out / name).exists() and (out / name).read_bytes() == (src / name).read_bytes():
            continue
        with atomic_path(out / name) as tmp:
            shutil.copyfile(src / name, tmp)
    graph = out / "graph"
    if (src / "graph").exists() and not graph.exists():  # same tree, same HCLG: linked, not rebuilt
        graph.symlink_to(os.path.relpath(src / "graph", out))


def is_up_to_date(senone_dir: PathLike, out_dir: PathLike, sets: Sequence[str],
                  inputs: Sequence[PathLike] = ()) -> bool:
    """Whether every set's realigned targets are done since their source manifest and ``inputs`` changed
    (:func:`realign` would skip them all; a caller can skip loading the network)."""
    src, out = Path(senone_dir), Path(out_dir)
    return all(up_to_date(out / f"cuts_{s}.jsonl.gz", [src / f"cuts_{s}.jsonl.gz", *inputs]) for s in sets)


def realign(*, senone_dir: PathLike, lang: PathLike, sets: Sequence[str], scorer: Scorer, out_dir: PathLike,
            config: RealignConfig = RealignConfig(), force: bool = False,
            inputs: Sequence[PathLike] = ()) -> RealignSummary:
    """Realign ``<senone_dir>/cuts_<set>.jsonl.gz`` of each set with ``scorer`` into the senone dir
    ``out_dir`` (module doc). ``lang``: ``data/lang_senone``. A set done since its source manifest and
    ``inputs`` (what the scorer reads: the network) last changed is skipped, unless ``force``: a teacher
    trained again makes its realignment again."""
    t0 = time.perf_counter()
    src, out = Path(senone_dir), Path(out_dir)
    if src.resolve() == out.resolve():
        raise ValueError(f"realigned targets go to another senone dir than their source {src}")
    for p in [src / "final.mdl", src / "tree", Path(lang) / "topo"] + [src / f"cuts_{s}.jsonl.gz" for s in sets]:
        if not p.exists():
            raise FileNotFoundError(f"not found: {p}")
    sets = list(dict.fromkeys(sets))
    if config.train_set not in sets:
        raise ValueError(f"the training set {config.train_set} must be realigned too: it gives the priors")
    out.mkdir(parents=True, exist_ok=True)
    _copy_model_files(src, out)
    model = load_model(src / "final.mdl", "senone model")
    lang_info = LangInfo.read(lang)
    summary = RealignSummary()
    train_counts = None
    for s in sets:
        manifest = out / f"cuts_{s}.jsonl.gz"
        if not force and up_to_date(manifest, [src / f"cuts_{s}.jsonl.gz", *inputs]):
            log.info("%s is done, skipped", manifest)
            continue
        cuts = list(open_cuts(src / f"cuts_{s}.jsonl.gz"))
        ts = time.perf_counter()
        targets, left, retried = realign_cuts(cuts, scorer, model, lang_info, config)
        kept = [c for c in cuts if c.id in targets]
        changed = sum(int((np.asarray(c.custom[TARGETS_FIELD].load()) != targets[c.id]).sum()) for c in kept
                      if c.custom and TARGETS_FIELD in c.custom)
        frames = sum(len(t) for t in targets.values())
        data = SetData(s, kept, {c.id: int(c.features.num_frames) for c in kept}, {}, {}, dict(left))
        write_targets(data, targets, out)
        summary.sets[s] = {"cuts": len(cuts), "aligned": len(kept), "left_out": len(left), "retried": len(retried),
                           "frames": frames, "changed_share": round(changed / max(frames, 1), 6)}
        summary.left_out[s] = left
        log.info("%s: realigned %d of %d cuts (%d frames of 30 ms) in %.1f s, %d left out, %d retried; %.1f%% of "
                 "frames changed senone -> %s", s, len(kept), len(cuts), frames, time.perf_counter() - ts, len(left),
                 len(retried), 100.0 * changed / max(frames, 1), manifest)
        if s == config.train_set:
            num_pdfs = int(model.transition_model.num_pdfs)
            train_counts = np.zeros(num_pdfs, dtype=np.float64)
            for t in targets.values():
                train_counts += np.bincount(t.astype(np.int64), minlength=num_pdfs)
    if train_counts is not None:
        with atomic_path(out / "senone_counts.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, train_counts)
        sil = [int(x) for x in (Path(lang) / "phones" / "silence.int").read_text().split()] \
            if (Path(lang) / "phones" / "silence.int").exists() else []
        info = TransitionInfo.from_model(model.transition_model)
        sil_pdfs = sorted({int(x) for x in info.pdf[1:][np.isin(info.phone[1:], sil)]})
        atomic_write_text(out / "occupancy.txt", occupancy_text(train_counts, sil_pdfs, {"realigned_from": src}))
        mark_done(out / "senone_counts.npy")
    summary.seconds = round(time.perf_counter() - t0, 3)
    if summary.sets:  # sets skipped as done keep what the run that made them recorded
        rec = json.loads((out / "realign.json").read_text()) if (out / "realign.json").exists() else {}
        for key in ("sets", "left_out"):
            rec[key] = {**rec.get(key, {}), **asdict(summary)[key]}
        rec.update(seconds=summary.seconds, source=str(src), config=asdict(config))
        atomic_write_text(out / "realign.json", json.dumps(rec, indent=1) + "\n")
    return summary
