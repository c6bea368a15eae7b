"""Stage 2: 64-bin log-mel fbank (and 13 MFCC for the GMM system) at 10 ms, stored with lilcom.

Outputs, per set (docs/file-contracts.md): ``<out_dir>/cuts_<set>.jsonl.gz`` (the input cuts with
``features`` attached) and ``<out_dir>/storage_<set>/feats-NNNNN.lca`` (``LilcomChunkyWriter``).

Extractor: lhotse's torch ``Fbank`` / ``Mfcc`` (several times faster than kaldi-native-fbank, see
docs/stack.md), 25 ms windows every 10 ms, ``snip_edges=False``, no dither. Every cut gets exactly
``num_frames(cut.duration)`` frames (the frame rule, :mod:`asrkit.features.stack`), which is also what
lhotse computes for ``cut.num_frames``; signals shorter than one window, which lhotse's framing cannot
reflect-pad, go through an equivalent padded path. Cuts under half a frame (0 frames) are skipped and
counted in the log.

Resumable and atomic: the storage folder and the manifest are written under temporary names and renamed
when complete, then a ``.cuts_<set>.jsonl.gz.done`` marker is written; a set with a marker is skipped, a
set without one (a killed run) is redone from scratch.
"""
from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
import queue
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from asrkit.data.lazy import iter_manifest_dicts, open_cuts
from asrkit.features.stack import FRAME_LENGTH, FRAME_SHIFT, SAMPLING_RATE, num_frames, num_frames_from_samples
from asrkit.utils.atomic import atomic_path, done_marker, is_done, mark_done

log = logging.getLogger(__name__)

KINDS = ("fbank", "mfcc")
NUM_MEL_BINS = 64
NUM_CEPS = 13


@dataclass
class FeatureConfig:
    """What is extracted; the defaults are the project's (64-bin fbank, 13 MFCC, 10 ms, 16 kHz)."""

    kind: str = "fbank"
    num_mel_bins: int = NUM_MEL_BINS  # fbank
    num_ceps: int = NUM_CEPS  # mfcc
    mfcc_mel_bins: int = 23  # Kaldi's default for MFCC
    sampling_rate: int = SAMPLING_RATE
    tick_power: int = -5  # lilcom precision: multiples of 2^-5 before the log-domain compression

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}; expected one of {KINDS}")

    @property
    def dim(self) -> int:
        return self.num_mel_bins if self.kind == "fbank" else self.num_ceps


def make_extractor(config: Union[FeatureConfig, str] = "fbank"):
    """The lhotse extractor for ``config`` (``snip_edges=False``, dither 0, 25 ms / 10 ms)."""
    from lhotse import Fbank, FbankConfig, Mfcc, MfccConfig

    if isinstance(config, str):
        config = FeatureConfig(kind=config)
    common = dict(sampling_rate=config.sampling_rate, frame_length=FRAME_LENGTH, frame_shift=FRAME_SHIFT,
                  snip_edges=False, dither=0.0)
    if config.kind == "fbank":
        return Fbank(FbankConfig(num_filters=config.num_mel_bins, **common))
    return Mfcc(MfccConfig(num_filters=config.mfcc_mel_bins, num_ceps=config.num_ceps, **common))


def extract_features(samples: np.ndarray, extractor, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """(num_samples,) float32 audio -> (n, dim) float32 features, n = num_frames_from_samples(num_samples).

    lhotse's ``snip_edges=False`` framing reflect-pads the signal by up to 280 samples and reads out of
    bounds when the signal is shorter than that; short signals get the same symmetric reflection here
    (numpy's ``symmetric`` padding, repeated as needed) plus one extra leading frame, which is dropped.
    """
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    hop = round(FRAME_SHIFT * sampling_rate)
    win = round(FRAME_LENGTH * sampling_rate)
    n = num_frames_from_samples(len(samples), sampling_rate)
    if n == 0:
        return np.zeros((0, extractor.feature_dim(sampling_rate)), dtype=np.float32)
    if len(samples) >= win:
        feats = extractor.extract(samples, sampling_rate)
    else:
        # Frame i of the padded signal y (i >= 1) covers y[i*hop - left, ...) = x[(i-1)*hop - left, ...),
        # i.e. frame i-1 of x, with x's own symmetric extension where it leaves x.
        y = np.pad(samples, (hop, win + hop), mode="symmetric")
        feats = extractor.extract(y, sampling_rate)[1 : n + 1]
    feats = np.asarray(feats, dtype=np.float32)
    if feats.shape[0] != n:  # the extractor's framing is the frame rule; anything else is a bug
        raise RuntimeError(f"extractor gave {feats.shape[0]} frames for {len(samples)} samples, expected {n}")
    return feats


def _fit_frames(feats: np.ndarray, n: int, cut_id: str) -> np.ndarray:
    """Force the frame rule for the cut's duration: the loaded audio may differ by a sample or two."""
    if feats.shape[0] == n:
        return feats
    if abs(feats.shape[0] - n) > 1:
        raise RuntimeError(f"cut {cut_id}: audio gave {feats.shape[0]} frames, its duration says {n}")
    if feats.shape[0] > n:
        return feats[:n]
    return np.concatenate([feats, feats[-1:]], axis=0)


def _cut_samples(cut, sampling_rate: int) -> np.ndarray:
    if cut.sampling_rate != sampling_rate:
        cut = cut.resample(sampling_rate)
    audio = cut.load_audio()
    if audio.ndim == 2:
        if audio.shape[0] != 1:
            raise ValueError(f"cut {cut.id}: expected mono audio, got {audio.shape[0]} channels")
        audio = audio[0]
    return audio


@dataclass
class ChunkResult:
    cuts: list = field(default_factory=list)  # cuts with features attached, in input order
    frames: int = 0
    seconds: float = 0.0
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # (cut id, reason)


def _process_chunk(cuts: Sequence, config: FeatureConfig, write_path: Path, final_path: Path,
                   progress: Optional[Callable[[int], None]] = None, prefetch: int = 8,
                   torch_threads: Optional[int] = 1, skip_unreadable: bool = False) -> ChunkResult:
    """Extract and store the features of ``cuts`` into one lilcom archive (input order kept).

    A reader thread decodes the audio (libsndfile releases the GIL) while the calling thread extracts
    (``torch_threads`` intra-op threads, 1 by default: torch's thread pool collapses when the cores are
    oversubscribed, and the reader needs a core) and compresses with lilcom. A writer thread for lilcom
    was measured too and gained nothing (lilcom holds the GIL). The archive is written at
    ``write_path``; the manifests point at ``final_path``, where it will be once the storage folder is
    renamed into place.
    """
    import torch
    from lhotse import LilcomChunkyWriter
    from lhotse.features import Features
    from lhotse.utils import fastcopy

    extractor = make_extractor(config)
    sr = config.sampling_rate
    result = ChunkResult()
    storage_path = str(final_path if final_path.suffix == ".lca" else final_path.with_suffix(".lca"))
    read_q: "queue.Queue" = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                read_q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def reader() -> None:
        for cut in cuts:
            try:
                item = (cut, _cut_samples(cut, sr), None)
            except Exception as e:  # handed to the calling thread, which raises it with the cut's id
                item = (cut, None, e)
            if not put(item):
                return
        put(None)

    prev_threads = torch.get_num_threads()
    if torch_threads:
        torch.set_num_threads(torch_threads)
    read_thread = threading.Thread(target=reader, daemon=True)
    read_thread.start()
    try:
        with LilcomChunkyWriter(write_path, tick_power=config.tick_power) as writer, torch.inference_mode():
            while True:
                item = read_q.get()
                if item is None:
                    break
                cut, samples, err = item
                if err is not None:
                    if not skip_unreadable:
                        raise RuntimeError(f"cut {cut.id}: cannot load audio: {err}") from err
                    # a file that passed validation's header probe but does not decode (a cut-short FLAC)
                    result.skipped.append((cut.id, f"cannot load audio: {err}"))
                    if progress is not None:
                        progress(1)
                    continue
                n = num_frames(cut.duration, sr)
                if n == 0:
                    result.skipped.append((cut.id, f"duration {cut.duration}s is under half a frame"))
                else:
                    feats = _fit_frames(extract_features(samples, extractor, sr), n, cut.id)
                    key = writer.write(cut.id, feats)
                    feat_manifest = Features(
                        type=extractor.name, num_frames=n, num_features=feats.shape[1], frame_shift=FRAME_SHIFT,
                        sampling_rate=sr, start=cut.start, duration=cut.duration, storage_type=writer.name,
                        storage_path=storage_path, storage_key=key, recording_id=cut.recording_id,
                        channels=cut.channel,
                    )
                    result.cuts.append(fastcopy(cut, features=feat_manifest))
                    result.frames += n
                    result.seconds += cut.duration
                if progress is not None:
                    progress(1)
    finally:
        stop.set()
        read_thread.join()
        torch.set_num_threads(prev_threads)
    return result


def _init_worker(num_threads: int) -> None:
    import torch

    torch.set_num_threads(num_threads)


def _chunk_task(args) -> ChunkResult:
    cuts, config, write_path, final_path, skip_unreadable = args
    return _process_chunk(cuts, config, write_path, final_path, skip_unreadable=skip_unreadable)


@dataclass
class FeatureSummary:
    set_name: str
    kind: str
    cuts: int
    frames: int
    seconds: float  # audio
    wall: float
    skipped: int
    manifest: Path
    resumed: bool = False  # True when the set was already done and nothing was computed
    skipped_cuts: List[Tuple[str, str]] = field(default_factory=list)  # (cut id, reason)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.wall if self.wall > 0 else float("nan")

    def line(self) -> str:
        if self.resumed:
            return f"{self.kind} {self.set_name}: already done ({self.manifest}), skipped"
        return (f"{self.kind} {self.set_name}: {self.cuts} cuts, {self.frames} frames, {self.seconds:.1f} s of audio "
                f"in {self.wall:.1f} s, {self.frames_per_second:,.0f} frames/s"
                + (f", {self.skipped} cuts skipped (see log)" if self.skipped else ""))


def manifest_path(out_dir: Union[str, Path], set_name: str) -> Path:
    return Path(out_dir) / f"cuts_{set_name}.jsonl.gz"


def storage_dir(out_dir: Union[str, Path], set_name: str) -> Path:
    return Path(out_dir) / f"storage_{set_name}"


def _bounded_map(pool, fn, items, in_flight: int):
    """``pool.map(fn, items)`` in order, with at most ``in_flight`` items submitted and not yet taken
    (``Executor.map`` submits every item at once: every chunk's cuts would be in memory)."""
    pending = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@dataclass
class ExtractionPlan:
    """How ``compute_features`` splits a set: ``num_jobs`` processes, chunks of ``chunk_size`` cuts.
    ``chunks()`` reads the cuts again (lazily, from the manifest) as it is iterated: a chunk of a single
    job (the whole set) is an iterator, the chunks of several jobs lists of at most 500 cuts."""

    num_jobs: int
    chunk_size: int
    num_cuts: int
    seconds: float
    source: object  # a manifest path or a CutSet

    def chunks(self) -> Iterator:
        cuts = open_cuts(self.source) if isinstance(self.source, (str, Path)) else self.source
        if self.chunk_size >= self.num_cuts and self.num_jobs == 1:  # read by this process as it goes
            yield iter(cuts)
            return
        cur = []
        for c in cuts:
            cur.append(c)
            if len(cur) == self.chunk_size:
                yield cur
                cur = []
        if cur:
            yield cur


def plan_extraction(cuts, num_jobs: int = 1, chunk_size: Optional[int] = None,
                    min_parallel_seconds: float = 7200.0, set_name: str = "cuts") -> ExtractionPlan:
    """The jobs and chunks of a set (``cuts``: a CutSet or a manifest path, read in one streaming pass
    of its lines, without building the cuts); see :func:`compute_features`."""
    if isinstance(cuts, (str, Path)):
        cuts_path = Path(cuts)
        if not cuts_path.exists():
            raise FileNotFoundError(f"cuts manifest not found: {cuts_path}")
        source, num_cuts, seconds = cuts_path, 0, 0.0
        for d in iter_manifest_dicts(cuts_path):
            num_cuts += 1
            seconds += d["duration"]
    else:
        source, num_cuts, seconds = cuts, 0, 0.0
        for c in cuts:
            num_cuts += 1
            seconds += c.duration
    if not num_cuts:
        raise ValueError(f"set {set_name}: no cuts")
    num_jobs = max(1, min(int(num_jobs), os.cpu_count() or 1, num_cuts))
    if num_jobs > 1 and seconds < min_parallel_seconds:
        log.debug("%s: under %.0f s of audio, one process", set_name, min_parallel_seconds)
        num_jobs = 1
    if chunk_size is None:
        if num_jobs == 1:  # one archive; progress is reported per cut anyway
            chunk_size = num_cuts
        else:  # enough chunks to balance the jobs and show progress, not so many small files
            chunk_size = max(1, min(500, math.ceil(num_cuts / (4 * num_jobs))))
    return ExtractionPlan(num_jobs, chunk_size, num_cuts, seconds, source)


def compute_features(
    cuts,
    out_dir: Union[str, Path],
    set_name: str,
    kind: str = "fbank",
    num_jobs: int = 1,
    config: Optional[FeatureConfig] = None,
    chunk_size: Optional[int] = None,
    overwrite: bool = False,
    progress_bar: bool = True,
    min_parallel_seconds: float = 7200.0,
    skip_unreadable: bool = False,
) -> FeatureSummary:
    """Compute and store the features of a set; skip it if its done marker exists (unless ``overwrite``).

    ``cuts``: a lhotse ``CutSet`` or the path of a cuts manifest. ``num_jobs`` processes (spawned: call it
    from under ``if __name__ == "__main__":``) each take chunks of ``chunk_size`` cuts, one lilcom archive
    per chunk; sets under ``min_parallel_seconds`` of audio run in this process: each spawned worker spends
    2-3 s importing torch and lhotse, and on the 2-core machines measured (2,400 s of audio) two workers
    were slower than one process (24k vs 84k frames/s), which does about 850 s of audio per second. Returns a :class:`FeatureSummary`; its ``line()`` is logged.
    ``skip_unreadable``: a cut whose audio cannot be decoded is skipped and counted instead of failing the set.
    """
    from lhotse import CutSet
    from tqdm import tqdm

    config = config or FeatureConfig(kind=kind)
    out_dir = Path(out_dir)
    manifest = manifest_path(out_dir, set_name)
    if is_done(manifest) and not overwrite:
        summary = FeatureSummary(set_name, config.kind, 0, 0, 0.0, 0.0, 0, manifest, resumed=True)
        log.info(summary.line())
        return summary
    plan = plan_extraction(cuts, num_jobs, chunk_size, min_parallel_seconds, set_name)
    num_jobs = plan.num_jobs

    storage = storage_dir(out_dir, set_name)
    for stale in (done_marker(manifest), done_marker(storage)):  # a redo invalidates the old outputs first
        stale.unlink(missing_ok=True)
    t0 = time.perf_counter()
    n_cuts, frames, seconds, skipped = 0, 0, 0.0, []

    def take(res: ChunkResult) -> None:  # a chunk's outcome: its cuts go to the manifest at once
        nonlocal n_cuts, frames, seconds
        for c in res.cuts:
            writer.write(c)
        n_cuts, frames, seconds = n_cuts + len(res.cuts), frames + res.frames, seconds + res.seconds
        skipped.extend(res.skipped)

    # the manifest is written as chunks finish (input order) and renamed into place after the storage
    with atomic_path(manifest) as tmp_manifest, CutSet.open_writer(tmp_manifest) as writer:
        with atomic_path(storage) as tmp_storage:
            tmp_storage.mkdir(parents=True)
            tasks = ((c, config, tmp_storage / f"feats-{i:05d}.lca", storage / f"feats-{i:05d}.lca", skip_unreadable)
                     for i, c in enumerate(plan.chunks()))
            with tqdm(total=plan.num_cuts, desc=f"{config.kind} {set_name}", unit="cut",
                      disable=not progress_bar, mininterval=1.0) as bar:
                if num_jobs == 1:
                    for c, cfg, wp, fp, skip in tasks:
                        take(_process_chunk(c, cfg, wp, fp, progress=bar.update, skip_unreadable=skip))
                else:
                    ctx = multiprocessing.get_context("spawn")  # torch's thread pools do not survive fork
                    with ProcessPoolExecutor(num_jobs, mp_context=ctx, initializer=_init_worker,
                                             initargs=(1,)) as pool:
                        for res in _bounded_map(pool, _chunk_task, tasks, 2 * num_jobs):  # in input order
                            take(res)
                            bar.update(len(res.cuts) + len(res.skipped))
        if skipped:
            log.warning("%s %s: skipped %d cuts: %s", config.kind, set_name, len(skipped),
                        "; ".join(f"{cid} ({why})" for cid, why in skipped[:20])
                        + (" ..." if len(skipped) > 20 else ""))
        if not n_cuts:
            raise ValueError(f"set {set_name}: every cut was skipped")
    mark_done(storage)
    mark_done(manifest)
    wall = time.perf_counter() - t0
    summary = FeatureSummary(set_name, config.kind, n_cuts, frames, seconds, wall, len(skipped), manifest,
                             skipped_cuts=skipped)
    log.info(summary.line())
    return summary
