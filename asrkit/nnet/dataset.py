"""Cuts -> training batches: stacked, CMVN-normalised 192-dim features with per-frame targets.

Input: lhotse cuts with 64-dim fbank attached (``data/fbank``) and, for labelled cuts, the custom field
``senones`` (int16 TemporalArray, one id per 30 ms frame, T = ceil(n / 3)) written by stage 6.
Machine-labelled cuts (``kind="soft"``) take their top-k targets from the pseudo-label shards of stage
10: ``labels`` is a :class:`asrkit.pseudo.shards.PseudoLabelReader` (anything with ``get(cut_id) ->
(ids (T, k) int64, probs (T, k) float32 renormalised)`` and an ``index`` dict listing ``[cut_id, T]`` per
shard, used for the length check before training);
cuts without labels must be filtered out first (``asrkit.nnet.ssl.select_labelled``).

Chunking. Training uses fixed-length chunks of ``chunk_size`` scored frames cut from each utterance
(the last chunk of an utterance is shorter; ``chunk_size=0``: whole utterances). Each chunk's input
is extended by up to ``left_context`` frames before it and ``right_context`` frames after it (within
the utterance); their outputs are not scored. The student (unidirectional) gets left context only: it
starts each chunk from a zero state and the left context warms that state up, as the field does with
chunked LSTM training (Kaldi nnet3 ``chunk-left-context``), instead of carrying state across batches,
which would tie batch composition to utterance order. The teacher (bidirectional) gets both.

Batch dict (collated in the DataLoader's workers):
  ``features`` (B, T, 192) float32 (zeros on padding), ``lengths`` (B,) int64 input frames per row,
  ``mask`` (B, T) bool scored frames, ``cut_ids`` list of str, ``starts`` (B,) first input frame,
  ``kind`` "hard" | "soft",
  hard: ``targets`` (B, T) int64, ``IGNORE_INDEX`` wherever ``mask`` is False;
  soft: ``topk_ids`` (B, T, k) int64 (0 on unscored frames), ``topk_probs`` (B, T, k) float32.
"""
from __future__ import annotations

import logging
import os
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch

from asrkit.data.cutstore import CutStore, as_sources, dict_field_shape, dict_sampling_rate
from asrkit.data.lazy import open_cuts
from asrkit.features.cmvn import CmvnStats, check_norm
from asrkit.features.reader import FeatureReader
from asrkit.features.stack import num_frames, num_stacked_frames
from asrkit.nnet.checkpoint import load_checkpoint
from asrkit.nnet.losses import IGNORE_INDEX

log = logging.getLogger(__name__)

TARGETS_FIELD = "senones"
TOPK_IDS_FIELD = "topk_ids"
TOPK_PROBS_FIELD = "topk_probs"


class TargetsError(ValueError):
    """A cut whose targets are missing or do not match its features; names the cut."""

    def __init__(self, cut_id: str, message: str):
        super().__init__(f"cut {cut_id}: {message}")
        self.cut_id = cut_id


def stacked_length(cut) -> int:
    """T = ceil(n / 3), n the 10 ms frames of the cut's features (the frame rule)."""
    if not cut.has_features:
        raise TargetsError(cut.id, "has no features attached (run asrkit.bin.compute_features)")
    n = num_frames(cut.duration, cut.features.sampling_rate)
    return num_stacked_frames(n)


def _field_len(cut, name: str) -> Optional[int]:
    arr = cut.custom.get(name) if cut.custom else None
    if arr is None:
        return None
    shape = getattr(arr, "shape", None)
    if shape is None:
        raise TargetsError(cut.id, f"custom field {name!r} is not an array")
    return int(shape[0])


def _load_field(cut, name: str) -> np.ndarray:
    """The whole stored array of a custom field.

    Not ``cut.load_custom(name)`` / ``cut.load_senones()``: lhotse trims a TemporalArray to
    ``round(duration / 0.03)`` frames, which is one frame short of T = ceil(n / 3) whenever
    n % 3 == 1 (e.g. n = 115: lhotse gives 38, the frame rule 39).
    """
    arr = cut.custom.get(name) if cut.custom else None
    if arr is None:
        raise TargetsError(cut.id, f"has no {name!r} targets")
    return np.asarray(arr.load())


def label_frames(labels) -> Dict[str, int]:
    """``{cut_id: T}`` of the utterances a PseudoLabelReader holds (from its index, no shard read).
    A dict of every id: at scale, ask ``labels.frames_of(cut_id)`` instead (:class:`LabelFrames`)."""
    if hasattr(labels, "frames_table"):
        return labels.frames_table()
    return {cid: int(n) for sh in labels.index["shards"] for cid, n in sh["utts"]}


class LabelFrames:
    """``get(cut_id) -> T or None`` over a reader's index without a dict of every id (where it can)."""

    def __init__(self, labels):
        self.labels = labels
        self._dict = None if hasattr(labels, "frames_of") else label_frames(labels)

    def get(self, cut_id: str) -> Optional[int]:
        return self._dict.get(cut_id) if self._dict is not None else self.labels.frames_of(cut_id)

    def __contains__(self, cut_id: str) -> bool:
        return self.get(cut_id) is not None


def check_cut(cut, kind: str = "hard", frames: Optional[Dict[str, int]] = None) -> int:
    """Raise :class:`TargetsError` naming the cut unless its targets match; return T.

    ``kind="soft"`` with ``frames`` (:func:`label_frames` of the pseudo-labels): the cut's labelled frames
    must equal T; without: the custom fields ``topk_ids`` / ``topk_probs``."""
    T = stacked_length(cut)
    if kind == "soft" and frames is not None:
        L = frames.get(cut.id)
        if L is None:
            raise TargetsError(cut.id, "has no pseudo-labels in the shard index (filtered or skipped by labelling)")
        if L != T:
            raise TargetsError(cut.id, f"pseudo-labels of {L} frames but its features give T = ceil(n/3) = {T} "
                                       f"stacked frames (n = {num_frames(cut.duration)}): labelled from "
                                       f"other features?")
        return T
    names = (TARGETS_FIELD,) if kind == "hard" else (TOPK_IDS_FIELD, TOPK_PROBS_FIELD)
    for name in names:
        L = _field_len(cut, name)
        if L is None:
            raise TargetsError(cut.id, f"has no {name!r} targets (stage 6 attaches them)")
        if L != T:
            raise TargetsError(cut.id, f"{name!r} has {L} frames but its features give T = ceil(n/3) = {T} "
                                       f"stacked frames (n = {num_frames(cut.duration)})")
    return T


def check_cuts(cuts, kind: str = "hard", labels=None) -> List[int]:
    """Check every cut before training starts; return the stacked lengths in order."""
    frames = LabelFrames(labels) if (kind == "soft" and labels is not None) else None
    return [check_cut(c, kind, frames) for c in cuts]


def check_cut_dict(d: Dict, kind: str = "hard", frames=None) -> int:
    """:func:`check_cut` on a serialised cut (a manifest line's dict), with the same rules and messages."""
    cid = d["id"]
    sr = dict_sampling_rate(d)
    if sr is None:
        raise TargetsError(cid, "has no features attached (run asrkit.bin.compute_features)")
    n = num_frames(d["duration"], sr)
    T = num_stacked_frames(n)
    if kind == "soft" and frames is not None:
        L = frames.get(cid)
        if L is None:
            raise TargetsError(cid, "has no pseudo-labels in the shard index (filtered or skipped by labelling)")
        if L != T:
            raise TargetsError(cid, f"pseudo-labels of {L} frames but its features give T = ceil(n/3) = {T} "
                                    f"stacked frames (n = {num_frames(d['duration'])}): labelled from "
                                    f"other features?")
        return T
    names = (TARGETS_FIELD,) if kind == "hard" else (TOPK_IDS_FIELD, TOPK_PROBS_FIELD)
    for name in names:
        shape = dict_field_shape(d, name)
        if shape is None:
            raise TargetsError(cid, f"has no {name!r} targets (stage 6 attaches them)")
        if not shape:
            raise TargetsError(cid, f"custom field {name!r} is not an array")
        L = int(shape[0])
        if L != T:
            raise TargetsError(cid, f"{name!r} has {L} frames but its features give T = ceil(n/3) = {T} "
                                    f"stacked frames (n = {num_frames(d['duration'])})")
    return T


def hard_targets(cut_id: str, stored: np.ndarray, num_feats: int, num_senones: Optional[int]) -> np.ndarray:
    """int64 senone targets from the stored ones, checked against the stacked features and the inventory."""
    tgt = stored.astype(np.int64)
    if len(tgt) != num_feats:
        raise TargetsError(cut_id, f"{len(tgt)} targets but {num_feats} stacked feature frames")
    if tgt.size and (tgt.min() < 0 or (num_senones and tgt.max() >= num_senones)):
        raise TargetsError(cut_id, f"senone ids outside [0, {num_senones}): min {tgt.min()}, max {tgt.max()}")
    return tgt


def soft_targets(cut_id: str, ids: np.ndarray, probs: np.ndarray, num_feats: int) -> tuple:
    """``(ids, probs)`` (int64, float32) checked against the stacked features."""
    if len(ids) != num_feats or len(probs) != num_feats:
        raise TargetsError(cut_id, f"top-k targets of {len(ids)}/{len(probs)} frames but "
                                   f"{num_feats} stacked feature frames")
    return ids, probs


class Segment(NamedTuple):
    cut: int  # index into the dataset's cut list
    start: int  # first scored frame
    end: int  # one past the last scored frame
    ctx_start: int  # first input frame
    ctx_end: int  # one past the last input frame

    @property
    def input_len(self) -> int:
        return self.ctx_end - self.ctx_start


def chunk_bounds(T: int, chunk_size: int = 0, min_chunk: int = 1) -> List[tuple]:
    """``[(start, end)]`` scored frames of the chunks of one utterance of ``T`` frames ([] if T <= 0).

    A last chunk shorter than ``min_chunk`` frames is merged into the previous one.
    """
    if T <= 0:
        return []
    if chunk_size <= 0 or T <= chunk_size:
        return [(0, T)]
    bounds = [(s, min(s + chunk_size, T)) for s in range(0, T, chunk_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_chunk:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


def make_segments(lengths: Sequence[int], chunk_size: int = 0, left_context: int = 0,
                  right_context: int = 0, min_chunk: int = 1) -> List[Segment]:
    """Cut utterances of ``lengths`` 30 ms frames into chunks (see the module docstring)."""
    segs: List[Segment] = []
    for i, T in enumerate(lengths):
        for s, e in chunk_bounds(T, chunk_size, min_chunk):
            segs.append(Segment(i, s, e, max(0, s - left_context), min(T, e + right_context)))
    return segs


class SegmentTable:
    """The segments of a dataset as five int64 columns (40 bytes a chunk instead of a tuple's ~120):
    ``table[i]`` is a :class:`Segment`; built with :meth:`add` one utterance at a time."""

    def __init__(self, chunk_size: int = 0, left_context: int = 0, right_context: int = 0, min_chunk: int = 1):
        self.cfg = (chunk_size, left_context, right_context, min_chunk)
        self._cols = [array("q") for _ in range(5)]
        self._np = None

    @classmethod
    def from_segments(cls, segs: Sequence[Segment]) -> "SegmentTable":
        t = cls()
        for seg in segs:
            for col, v in zip(t._cols, seg):
                col.append(int(v))
        return t

    def add(self, i: int, T: int) -> None:
        chunk_size, left, right, min_chunk = self.cfg
        c = self._cols
        for s, e in chunk_bounds(T, chunk_size, min_chunk):
            c[0].append(i)
            c[1].append(s)
            c[2].append(e)
            c[3].append(max(0, s - left))
            c[4].append(min(T, e + right))
        self._np = None

    @property
    def columns(self) -> List[np.ndarray]:
        if self._np is None:
            self._np = [np.frombuffer(c, dtype=np.int64) if len(c) else np.zeros(0, np.int64) for c in self._cols]
        return self._np

    def __len__(self) -> int:
        return len(self._cols[0])

    def __getitem__(self, i: int) -> Segment:
        c = self._cols
        return Segment(c[0][i], c[1][i], c[2][i], c[3][i], c[4][i])

    def __iter__(self) -> Iterator[Segment]:
        for i in range(len(self)):
            yield self[i]

    def input_lengths(self) -> np.ndarray:
        cols = self.columns
        return cols[4] - cols[3]

    def scored_frames(self) -> int:
        cols = self.columns
        return int((cols[2] - cols[1]).sum())


@dataclass
class DataConfig:
    chunk_size: int = 200
    left_context: int = 20
    right_context: int = 0
    min_chunk: int = 20
    max_frames: int = 10000  # padded input frames per batch (rows x longest row)
    max_batch_size: int = 0  # 0: no limit beyond max_frames
    num_buckets: int = 10
    num_workers: int = 1


class ChunkDataset(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches: ``dataset[list_of_segment_indices] -> batch``.

    Use with ``DataLoader(ds, sampler=batch_sampler, batch_size=None, collate_fn=identity)`` so
    collation runs in the workers.
    """

    def __init__(self, cuts, reader, segments: Sequence[Segment], kind: str = "hard",
                 num_senones: Optional[int] = None, labels=None, durations: Optional[np.ndarray] = None):
        if kind not in ("hard", "soft"):
            raise ValueError(f"unknown dataset kind {kind!r}")
        self.cuts = cuts if isinstance(cuts, CutStore) else list(cuts)  # a store: read by position from disk
        self.reader = reader
        self.segments = segments if isinstance(segments, SegmentTable) else SegmentTable.from_segments(segments)
        self.kind = kind
        self.num_senones = num_senones
        self.labels = labels  # soft: the PseudoLabelReader (None: the custom fields topk_ids / topk_probs)
        self._durations = durations

    @classmethod
    def from_cuts(cls, cuts, reader, chunk_size: int = 0, left_context: int = 0, right_context: int = 0,
                  min_chunk: int = 1, kind: str = "hard", num_senones: Optional[int] = None,
                  labels=None, keep: Optional[Callable[[str], bool]] = None) -> "ChunkDataset":
        """A dataset of ``cuts``: cut objects (held in memory), or manifests (a path, a list of paths, a
        lazy CutSet reading one): those are read in one streaming pass into a :class:`CutStore`, so only
        ids, offsets, durations and segments stay in memory. ``keep(cut_id)``: manifest cuts for which it
        is False are left out (e.g. unlabelled cuts without pseudo-labels)."""
        sources = as_sources(cuts)
        if sources is None:
            cuts = list(cuts)
            if keep is not None:
                cuts = [c for c in cuts if keep(c.id)]
            lengths = check_cuts(cuts, kind, labels)
            segs = make_segments(lengths, chunk_size, left_context, right_context, min_chunk)
            return cls(cuts, reader, segs, kind, num_senones, labels)
        frames = LabelFrames(labels) if (kind == "soft" and labels is not None) else None
        table = SegmentTable(chunk_size, left_context, right_context, min_chunk)
        durations = array("d")
        counter = [0]

        def visit(d: Dict) -> bool:
            if keep is not None and not keep(d["id"]):
                return False
            T = check_cut_dict(d, kind, frames)
            table.add(counter[0], T)
            durations.append(float(d["duration"]))
            counter[0] += 1
            return True

        store = CutStore(sources, visit)
        return cls(store, reader, table, kind, num_senones, labels, np.frombuffer(durations, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.segments)

    def cut_id(self, i: int) -> str:
        """The id of cut ``i`` (without reading the cut back from a store)."""
        return self.cuts.cut_id(i) if isinstance(self.cuts, CutStore) else self.cuts[i].id

    def durations(self) -> np.ndarray:
        """Seconds of each cut, in order."""
        if self._durations is None:
            self._durations = np.array([c.duration for c in self.cuts], dtype=np.float64)
        return self._durations

    def input_lengths(self) -> np.ndarray:
        return self.segments.input_lengths()

    def scored_frames(self) -> int:
        return self.segments.scored_frames()

    def _load(self, cut):
        feats = self.reader(cut)
        if self.kind == "hard":
            return feats, (hard_targets(cut.id, _load_field(cut, TARGETS_FIELD), len(feats), self.num_senones),)
        if self.labels is not None:  # the pseudo-label shards: int64 ids, renormalised float32 probs
            ids, probs = self.labels.get(cut.id)
            ids, probs = np.asarray(ids, dtype=np.int64), np.asarray(probs, dtype=np.float32)
        else:
            ids = _load_field(cut, TOPK_IDS_FIELD).astype(np.int64)  # uint16 -> int64
            probs = _load_field(cut, TOPK_PROBS_FIELD).astype(np.float32)
        return feats, soft_targets(cut.id, ids, probs, len(feats))

    def __getitem__(self, idx) -> Dict:
        if isinstance(idx, (int, np.integer)):
            idx = [int(idx)]
        segs = [self.segments[i] for i in idx]
        loaded: Dict[int, tuple] = {}
        rows = []
        for s in segs:
            if s.cut not in loaded:
                loaded[s.cut] = self._load(self.cuts[s.cut])  # a store reads the cut back from disk
            rows.append((self.cut_id(s.cut), s, *loaded[s.cut]))
        return collate_rows(self.kind, rows)


def collate_rows(kind: str, rows: Sequence[tuple]) -> Dict:
    """The batch dict (module doc) of ``rows``: ``(cut_id, segment, stacked features (T, D), targets)``,
    targets ``(senones,)`` (hard) or ``(topk ids, topk probs)`` (soft) of the whole cut, as
    :meth:`ChunkDataset._load` gives them. Shared by every loader, so their batches match bit for bit."""
    B = len(rows)
    Tmax = max(s.input_len for _, s, _, _ in rows)
    feats_out = None
    mask = torch.zeros(B, Tmax, dtype=torch.bool)
    lengths = torch.zeros(B, dtype=torch.int64)
    starts = torch.zeros(B, dtype=torch.int64)
    cut_ids = []
    if kind == "hard":
        targets = torch.full((B, Tmax), IGNORE_INDEX, dtype=torch.int64)
    for b, (cid, s, feats, tg) in enumerate(rows):
        if feats_out is None:
            feats_out = torch.zeros(B, Tmax, feats.shape[1], dtype=torch.float32)
            if kind == "soft":
                k = tg[0].shape[1]
                topk_ids = torch.zeros(B, Tmax, k, dtype=torch.int64)
                topk_probs = torch.zeros(B, Tmax, k, dtype=torch.float32)
        L = s.input_len
        feats_out[b, :L] = torch.from_numpy(np.ascontiguousarray(feats[s.ctx_start:s.ctx_end]))
        a, e = s.start - s.ctx_start, s.end - s.ctx_start
        mask[b, a:e] = True
        lengths[b] = L
        starts[b] = s.ctx_start
        cut_ids.append(cid)
        if kind == "hard":
            targets[b, a:e] = torch.from_numpy(tg[0][s.start:s.end])
        else:
            topk_ids[b, a:e] = torch.from_numpy(tg[0][s.start:s.end])
            topk_probs[b, a:e] = torch.from_numpy(tg[1][s.start:s.end])
    batch = {"kind": kind, "features": feats_out, "lengths": lengths, "mask": mask,
             "starts": starts, "cut_ids": cut_ids}
    if kind == "hard":
        batch["targets"] = targets
    else:
        batch["topk_ids"] = topk_ids
        batch["topk_probs"] = topk_probs
    return batch


def identity(x):
    return x


def _worker_init(_):
    torch.set_num_threads(1)


def make_loader(dataset: ChunkDataset, batch_sampler, num_workers: int = 0, seed: int = 0,
                epoch: int = 0, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader over whole-batch items. Its own generator, seeded by (seed, epoch), keeps the
    global torch RNG untouched, so creating a loader mid-epoch (resuming) does not shift dropout masks."""
    g = torch.Generator()
    g.manual_seed(int(seed) * 100003 + int(epoch))
    return torch.utils.data.DataLoader(
        dataset, sampler=batch_sampler, batch_size=None, collate_fn=identity, num_workers=num_workers,
        worker_init_fn=_worker_init if num_workers > 0 else None, generator=g, pin_memory=pin_memory,
        prefetch_factor=4 if num_workers > 0 else None, persistent_workers=False)


def batch_to(batch: Dict, device, non_blocking: bool = False) -> Dict:
    return {k: (v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) and k != "lengths" else v)
            for k, v in batch.items()}


def load_cuts(path):
    """A lazy CutSet over a manifest path (cuts read one at a time as it is iterated: ``open_cuts``), or
    a CutSet / list passed through. :meth:`ChunkDataset.from_cuts` streams such a set into a store."""
    if isinstance(path, (str, os.PathLike)):
        return open_cuts(path)
    return path


def checkpoint_norm(ck: Union[Dict, str, Path]) -> str:
    """The feature normalisation a network was trained with (its checkpoint's ``train_config.cmvn_mode``;
    checkpoints older than the option: global)."""
    if not isinstance(ck, dict):
        ck = load_checkpoint(ck)
    return check_norm((ck.get("train_config") or {}).get("cmvn_mode", "global"))


def reader_for_checkpoint(ck: Union[Dict, str, Path], cmvn: Union[CmvnStats, str, Path, None],
                          *cut_sources) -> FeatureReader:
    """The reader that feeds a trained network as its training did: the checkpoint's normalisation,
    per-speaker statistics over ``cut_sources`` (the set being labelled or decoded)."""
    return FeatureReader(cmvn).with_norm(checkpoint_norm(ck), *cut_sources)


def reader_with_norm(reader, norm: str, *cut_sources):
    """``reader`` (a :class:`FeatureReader`) switched to the normalisation ``norm`` (the training config's
    ``cmvn``), speakers' statistics from ``cut_sources``; another kind of reader only in global mode."""
    check_norm(norm)
    if hasattr(reader, "with_norm"):
        return reader.with_norm(norm, *cut_sources)
    if norm != "global":
        raise ValueError(f"cmvn_mode {norm!r} needs an asrkit.features.reader.FeatureReader, "
                         f"got {type(reader).__name__}")
    return reader
