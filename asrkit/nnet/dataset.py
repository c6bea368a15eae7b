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
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch

from asrkit.features.stack import num_frames, num_stacked_frames
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
    """``{cut_id: T}`` of the utterances a PseudoLabelReader holds (from its index, no shard read)."""
    return {cid: int(n) for sh in labels.index["shards"] for cid, n in sh["utts"]}


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
    frames = label_frames(labels) if (kind == "soft" and labels is not None) else None
    return [check_cut(c, kind, frames) for c in cuts]


class Segment(NamedTuple):
    cut: int  # index into the dataset's cut list
    start: int  # first scored frame
    end: int  # one past the last scored frame
    ctx_start: int  # first input frame
    ctx_end: int  # one past the last input frame

    @property
    def input_len(self) -> int:
        return self.ctx_end - self.ctx_start


def make_segments(lengths: Sequence[int], chunk_size: int = 0, left_context: int = 0,
                  right_context: int = 0, min_chunk: int = 1) -> List[Segment]:
    """Cut utterances of ``lengths`` 30 ms frames into chunks (see the module docstring).

    A last chunk shorter than ``min_chunk`` frames is merged into the previous one.
    """
    segs: List[Segment] = []
    for i, T in enumerate(lengths):
        if T <= 0:
            continue
        if chunk_size <= 0 or T <= chunk_size:
            bounds = [(0, T)]
        else:
            starts = list(range(0, T, chunk_size))
            bounds = [(s, min(s + chunk_size, T)) for s in starts]
            if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_chunk:
                last = bounds.pop()
                bounds[-1] = (bounds[-1][0], last[1])
        for s, e in bounds:
            segs.append(Segment(i, s, e, max(0, s - left_context), min(T, e + right_context)))
    return segs


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
                 num_senones: Optional[int] = None, labels=None):
        if kind not in ("hard", "soft"):
            raise ValueError(f"unknown dataset kind {kind!r}")
        self.cuts = list(cuts)
        self.reader = reader
        self.segments = list(segments)
        self.kind = kind
        self.num_senones = num_senones
        self.labels = labels  # soft: the PseudoLabelReader (None: the custom fields topk_ids / topk_probs)

    @classmethod
    def from_cuts(cls, cuts, reader, chunk_size: int = 0, left_context: int = 0, right_context: int = 0,
                  min_chunk: int = 1, kind: str = "hard", num_senones: Optional[int] = None,
                  labels=None) -> "ChunkDataset":
        cuts = list(cuts)
        lengths = check_cuts(cuts, kind, labels)
        segs = make_segments(lengths, chunk_size, left_context, right_context, min_chunk)
        return cls(cuts, reader, segs, kind, num_senones, labels)

    def __len__(self) -> int:
        return len(self.segments)

    def input_lengths(self) -> List[int]:
        return [s.input_len for s in self.segments]

    def scored_frames(self) -> int:
        return sum(s.end - s.start for s in self.segments)

    def _load(self, cut):
        feats = self.reader(cut)
        if self.kind == "hard":
            tgt = _load_field(cut, TARGETS_FIELD).astype(np.int64)
            if len(tgt) != len(feats):
                raise TargetsError(cut.id, f"{len(tgt)} targets but {len(feats)} stacked feature frames")
            if tgt.size and (tgt.min() < 0 or (self.num_senones and tgt.max() >= self.num_senones)):
                raise TargetsError(cut.id, f"senone ids outside [0, {self.num_senones}): "
                                           f"min {tgt.min()}, max {tgt.max()}")
            return feats, (tgt,)
        if self.labels is not None:  # the pseudo-label shards: int64 ids, renormalised float32 probs
            ids, probs = self.labels.get(cut.id)
            ids, probs = np.asarray(ids, dtype=np.int64), np.asarray(probs, dtype=np.float32)
        else:
            ids = _load_field(cut, TOPK_IDS_FIELD).astype(np.int64)  # uint16 -> int64
            probs = _load_field(cut, TOPK_PROBS_FIELD).astype(np.float32)
        if len(ids) != len(feats) or len(probs) != len(feats):
            raise TargetsError(cut.id, f"top-k targets of {len(ids)}/{len(probs)} frames but "
                                       f"{len(feats)} stacked feature frames")
        return feats, (ids, probs)

    def __getitem__(self, idx) -> Dict:
        if isinstance(idx, (int, np.integer)):
            idx = [int(idx)]
        segs = [self.segments[i] for i in idx]
        B = len(segs)
        Tmax = max(s.input_len for s in segs)
        loaded: Dict[int, tuple] = {}
        feats_out = None
        mask = torch.zeros(B, Tmax, dtype=torch.bool)
        lengths = torch.zeros(B, dtype=torch.int64)
        starts = torch.zeros(B, dtype=torch.int64)
        cut_ids = []
        if self.kind == "hard":
            targets = torch.full((B, Tmax), IGNORE_INDEX, dtype=torch.int64)
        for b, s in enumerate(segs):
            if s.cut not in loaded:
                loaded[s.cut] = self._load(self.cuts[s.cut])
            feats, tg = loaded[s.cut]
            if feats_out is None:
                feats_out = torch.zeros(B, Tmax, feats.shape[1], dtype=torch.float32)
                if self.kind == "soft":
                    k = tg[0].shape[1]
                    topk_ids = torch.zeros(B, Tmax, k, dtype=torch.int64)
                    topk_probs = torch.zeros(B, Tmax, k, dtype=torch.float32)
            L = s.input_len
            feats_out[b, :L] = torch.from_numpy(np.ascontiguousarray(feats[s.ctx_start:s.ctx_end]))
            a, e = s.start - s.ctx_start, s.end - s.ctx_start
            mask[b, a:e] = True
            lengths[b] = L
            starts[b] = s.ctx_start
            cut_ids.append(self.cuts[s.cut].id)
            if self.kind == "hard":
                targets[b, a:e] = torch.from_numpy(tg[0][s.start:s.end])
            else:
                topk_ids[b, a:e] = torch.from_numpy(tg[0][s.start:s.end])
                topk_probs[b, a:e] = torch.from_numpy(tg[1][s.start:s.end])
        batch = {"kind": self.kind, "features": feats_out, "lengths": lengths, "mask": mask,
                 "starts": starts, "cut_ids": cut_ids}
        if self.kind == "hard":
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
    """A CutSet from a manifest path (or pass a CutSet / list through)."""
    from pathlib import Path

    if isinstance(path, (str, Path)):
        from lhotse import CutSet

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"cuts manifest not found: {p}")
        return CutSet.from_file(p)
    return path
