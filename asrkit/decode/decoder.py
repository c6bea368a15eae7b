"""Decoding per-frame pdf scores with an HCLG graph (kaldi_decoder.FasterDecoder + DecodableCtc).

Scores are [frames, num_pdfs] log-domain values: a network's log-posteriors minus log-priors, or a
GMM's log-likelihoods. Each utterance becomes a [frames, num_transition_ids] matrix whose column
``tid - 1`` is ``acoustic_scale * score[:, pdf(tid)]`` (docs/stack.md) and is decoded by
``kaldi_decoder.FasterDecoder`` over ``kaldi_decoder.DecodableCtc`` (offset 0).

An utterance whose search reaches no final state is kept, not dropped: as Kaldi's decode-faster, the
best partial path is output with a warning (``DecodeConfig.allow_partial``; set it False for an empty
hypothesis), it is counted in ``DecodeSummary.num_not_final`` and listed in ``not_final.txt``.

Decode dir written by :func:`write_decode_dir`::

    hyp.txt          Kaldi ``text``: ``utt word word ...`` (every decoded utterance, maybe empty)
    ali.txt          Kaldi ``ark,t`` int vectors: transition ids per frame
    phone_ali.txt    Kaldi ``ark,t`` int vectors: phone id per frame
    not_final.txt    utterances that reached no final state (one a line)
    summary.json     counts, frames, seconds, real-time factor, options
"""
from __future__ import annotations

import collections
import json
import logging
import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from asrkit.fst import kaldi_decoder, kaldifst

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass
class DecodeConfig:
    acoustic_scale: float = 0.1
    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 200
    allow_partial: bool = True  # Kaldi's behaviour: best partial path (with a warning) if no final state
    frame_shift: float = 0.03  # seconds per score frame, for the real-time factor only


@dataclass
class UttResult:
    utt: str
    word_ids: List[int]
    words: List[str]
    tids: List[int]
    phones: List[int]
    num_frames: int
    reached_final: bool
    graph_cost: float = 0.0
    acoustic_cost: float = 0.0
    seconds: float = 0.0
    error: str = ""


@dataclass
class DecodeSummary:
    num_utts: int = 0
    num_frames: int = 0
    num_not_final: int = 0
    num_empty: int = 0
    num_failed: int = 0
    seconds: float = 0.0
    decode_seconds: float = 0.0  # summed over utterances (all jobs)
    frames_per_second: float = 0.0  # wall clock
    rtf: float = 0.0  # wall-clock seconds / audio seconds
    nj: int = 1
    not_final: List[str] = field(default_factory=list)
    config: Dict[str, float] = field(default_factory=dict)


class Graph:
    """An HCLG graph dir loaded for decoding (see :mod:`asrkit.graph.hclg` for its layout)."""

    def __init__(self, fst, id2word: Dict[int, str], tid2pdf: np.ndarray, tid2phone: np.ndarray,
                 num_pdfs: int, path: Optional[Path] = None):
        self.fst = fst
        self.id2word = id2word
        self.tid2pdf = np.asarray(tid2pdf)
        self.tid2phone = np.asarray(tid2phone)
        self.num_pdfs = int(num_pdfs)
        self.path = path
        # column tid-1 of the decodable's matrix takes score[:, _cols[tid-1]]
        self._cols = self.tid2pdf[1:].astype(np.int64)

    @property
    def num_transition_ids(self) -> int:
        return len(self.tid2pdf) - 1

    @classmethod
    def load(cls, graph_dir: PathLike) -> "Graph":
        d = Path(graph_dir)
        for name in ("HCLG.fst", "words.txt", "transitions.npz"):
            if not (d / name).exists():
                raise FileNotFoundError(f"graph dir {d} lacks {name} (built by asrkit.bin.make_graph?)")
        fst = kaldifst.StdVectorFst.read(str(d / "HCLG.fst"))
        id2word = {}
        for line in (d / "words.txt").read_text(encoding="utf-8").splitlines():
            f = line.split()
            if len(f) == 2:
                id2word[int(f[1])] = f[0]
        arr = np.load(d / "transitions.npz")
        return cls(fst, id2word, arr["tid2pdf"], arr["tid2phone"], int(arr["num_pdfs"]), d)

    def decoder(self, config: "DecodeConfig"):
        """A FasterDecoder for this graph, reused across utterances (decode() re-initialises it)."""
        key = (config.beam, config.max_active, config.min_active, os.getpid())
        if getattr(self, "_decoder_key", None) != key:
            opts = kaldi_decoder.FasterDecoderOptions(beam=config.beam, max_active=config.max_active,
                                                      min_active=config.min_active)
            self._decoder = kaldi_decoder.FasterDecoder(self.fst, opts)
            self._decoder_key = key
        return self._decoder

    def tid_scores(self, scores: np.ndarray, acoustic_scale: float) -> np.ndarray:
        """[T, num_pdfs] scores -> [T, num_transition_ids] float32, column tid-1 = scale * score[pdf(tid)]."""
        scores = np.asarray(scores)
        if scores.ndim != 2 or scores.shape[1] != self.num_pdfs:
            raise ValueError(f"expected scores of shape [frames, {self.num_pdfs}] (num_pdfs of the graph's "
                             f"model), got {scores.shape}")
        out = np.take(scores, self._cols, axis=1).astype(np.float32, copy=False)
        out *= np.float32(acoustic_scale)
        return np.ascontiguousarray(out)


def decode_utterance(graph: Graph, scores: np.ndarray, config: DecodeConfig = DecodeConfig(),
                     utt: str = "") -> UttResult:
    t0 = time.perf_counter()
    num_frames = int(np.shape(scores)[0])
    if num_frames == 0:
        return UttResult(utt, [], [], [], [], 0, False, error="no frames")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"utterance {utt}: scores contain NaN or inf")
    mat = graph.tid_scores(scores, config.acoustic_scale)
    decoder = graph.decoder(config)
    decoder.decode(kaldi_decoder.DecodableCtc(mat))
    res = read_result(decoder, graph, config, utt, num_frames)
    res.seconds = time.perf_counter() - t0
    return res


def read_result(decoder, graph: Graph, config: DecodeConfig, utt: str, num_frames: int) -> UttResult:
    """The result of a search that has consumed ``num_frames`` frames (whole, or advanced chunk by chunk:
    asrkit.infer's streaming reads its decoder here too)."""
    reached = bool(decoder.reached_final())
    res = UttResult(utt, [], [], [], [], num_frames, reached)
    if not reached and not config.allow_partial:
        res.error = "no final state reached (empty hypothesis)"
    else:
        ok, lat = decoder.get_best_path(use_final_probs=True)
        if ok:
            ok2, isyms, osyms, weight = kaldifst.get_linear_symbol_sequence(lat)
            if ok2:
                res.tids = list(isyms)
                res.word_ids = [w for w in osyms if w != 0]
                res.words = [graph.id2word.get(w, f"<id{w}>") for w in res.word_ids]
                res.phones = graph.tid2phone[np.asarray(res.tids, dtype=np.int64)].tolist() if res.tids else []
                res.graph_cost, res.acoustic_cost = float(weight.value1), float(weight.value2)
            else:
                res.error = "best path is not linear"
        else:
            res.error = "no best path (search died)"
        if not reached:
            res.error = "no final state reached: partial traceback"
    return res


# ---------------------------------------------------------------- sets, in parallel

_WORKER_GRAPH: Optional[Graph] = None
_WORKER_CONFIG: Optional[DecodeConfig] = None


def _load_matrix(item) -> Tuple[str, np.ndarray]:
    utt, src = item
    if isinstance(src, str):  # a Kaldi rxspecifier (scp entry): read in the worker
        import kaldiio

        src = kaldiio.load_mat(src)
    return utt, src


def _worker_decode(item) -> UttResult:
    utt, mat = _load_matrix(item)
    try:
        return decode_utterance(_WORKER_GRAPH, mat, _WORKER_CONFIG, utt)
    except Exception as e:  # reported, counted, never silently dropped
        return UttResult(utt, [], [], [], [], int(np.shape(mat)[0]) if np.ndim(mat) == 2 else 0, False,
                         error=f"failed: {e}")


ScoresItem = Tuple[str, Union[np.ndarray, str]]


def decode_set(scores_iter: Iterable[ScoresItem], graph: Union[Graph, PathLike],
               config: DecodeConfig = DecodeConfig(), nj: int = 1,
               progress: bool = False) -> Tuple[List[UttResult], DecodeSummary]:
    """Decode (utt, scores) pairs, in input order; a score may be a matrix or an scp rxspecifier.

    With ``nj > 1`` a fork pool decodes utterances in parallel (at most ``4 * nj`` in flight).
    """
    global _WORKER_GRAPH, _WORKER_CONFIG
    if not isinstance(graph, Graph):
        graph = Graph.load(graph)
    _WORKER_GRAPH, _WORKER_CONFIG = graph, config
    t0 = time.perf_counter()
    results: List[UttResult] = []
    pbar = None
    if progress:
        try:
            from tqdm import tqdm

            pbar = tqdm(unit="utt", desc="decode")
        except ImportError:
            pass
    if nj <= 1:
        for item in scores_iter:
            results.append(_worker_decode(item))
            if pbar is not None:
                pbar.update(1)
    else:
        ctx = mp.get_context("fork")
        window = collections.deque()
        with ctx.Pool(nj) as pool:
            for item in scores_iter:
                window.append(pool.apply_async(_worker_decode, (item,)))
                while len(window) >= 4 * nj:
                    results.append(window.popleft().get())
                    if pbar is not None:
                        pbar.update(1)
            while window:
                results.append(window.popleft().get())
                if pbar is not None:
                    pbar.update(1)
    if pbar is not None:
        pbar.close()
    wall = time.perf_counter() - t0
    s = DecodeSummary(nj=nj, config=asdict(config), seconds=round(wall, 4))
    seen = set()
    for r in results:
        if r.utt in seen:
            raise ValueError(f"utterance {r.utt} appears twice in the scores")
        seen.add(r.utt)
        s.num_utts += 1
        s.num_frames += r.num_frames
        s.decode_seconds += r.seconds
        if not r.reached_final:
            s.num_not_final += 1
            s.not_final.append(r.utt)
            log.warning("utterance %s: %s", r.utt, r.error or "no final state reached")
        if r.error.startswith("failed"):
            s.num_failed += 1
            log.error("utterance %s: %s", r.utt, r.error)
        if not r.word_ids:
            s.num_empty += 1
    s.decode_seconds = round(s.decode_seconds, 4)
    if wall > 0:
        s.frames_per_second = round(s.num_frames / wall, 1)
    audio = s.num_frames * config.frame_shift
    s.rtf = round(wall / audio, 6) if audio > 0 else 0.0
    log.info("decoded %d utterances, %d frames in %.2f s (%.0f frames/s, RTF %.4f, nj=%d); %d reached no "
             "final state, %d empty, %d failed", s.num_utts, s.num_frames, wall, s.frames_per_second, s.rtf,
             nj, s.num_not_final, s.num_empty, s.num_failed)
    return results, s


def write_decode_dir(results: Sequence[UttResult], summary: DecodeSummary, out_dir: PathLike) -> Path:
    """Write hyp.txt, ali.txt, phone_ali.txt, not_final.txt, summary.json (each atomically)."""
    from asrkit.utils.atomic import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "hyp.txt", "".join(f"{r.utt} {' '.join(r.words)}".rstrip() + "\n" for r in results))
    atomic_write_text(out / "ali.txt", "".join(f"{r.utt} {' '.join(map(str, r.tids))}".rstrip() + "\n"
                                               for r in results))
    atomic_write_text(out / "phone_ali.txt", "".join(f"{r.utt} {' '.join(map(str, r.phones))}".rstrip() + "\n"
                                                     for r in results))
    atomic_write_text(out / "not_final.txt", "".join(f"{u}\n" for u in summary.not_final))
    atomic_write_text(out / "summary.json", json.dumps(asdict(summary), indent=2) + "\n")
    return out


# ---------------------------------------------------------------- score sources

def read_log_priors(path: PathLike) -> np.ndarray:
    """Log priors from .npy or a text vector (Kaldi ``[ ... ]`` brackets allowed)."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path).astype(np.float32).reshape(-1)
    txt = path.read_text().replace("[", " ").replace("]", " ")
    return np.asarray([float(x) for x in txt.split()], dtype=np.float32)


def iter_scores(source: Union[PathLike, Dict[str, np.ndarray], Sequence[ScoresItem]],
                lazy: bool = True) -> Iterator[ScoresItem]:
    """(utt, matrix-or-rxspecifier) pairs from an scp, an ark, a directory holding scores.scp, or memory.

    With ``lazy`` and an scp, items are rxspecifiers so that the workers read the matrices themselves.
    """
    if isinstance(source, dict):
        yield from source.items()
        return
    if not isinstance(source, (str, os.PathLike)):
        yield from source
        return
    import kaldiio

    p = Path(source)
    if p.is_dir():
        p = p / "scores.scp"
    if not p.exists():
        raise FileNotFoundError(f"scores not found: {source}")
    if p.suffix == ".scp":
        if lazy:
            for n, line in enumerate(p.read_text().splitlines(), 1):
                f = line.split(maxsplit=1)
                if not f:
                    continue
                if len(f) != 2:
                    raise ValueError(f"{p}:{n}: expected 'utt rxspecifier'")
                yield f[0], f[1]
        else:
            for utt, mat in kaldiio.load_scp_sequential(str(p)):
                yield utt, mat
    else:
        for utt, mat in kaldiio.load_ark(str(p)):
            yield utt, mat


def with_priors(items: Iterable[ScoresItem], log_priors: Optional[np.ndarray]) -> Iterator[ScoresItem]:
    """Subtract log priors (loading rxspecifiers here when needed)."""
    for utt, src in items:
        if log_priors is None:
            yield utt, src
        else:
            _, mat = _load_matrix((utt, src))
            if mat.shape[1] != log_priors.shape[0]:
                raise ValueError(f"utterance {utt}: {mat.shape[1]} score columns but {log_priors.shape[0]} priors")
            yield utt, mat - log_priors[None, :]
