"""10 ms alignments -> 30 ms phone sequences (the frame rule of docs/design.md).

The GMM system aligns at 10 ms with three-state HMMs; the senone tree and the networks work at 30 ms with
one emitting state per phone. An utterance of ``n`` 10 ms frames has ``T = ceil(n / 3)`` frames of 30 ms,
and 30 ms frame ``t`` takes the label of 10 ms frame ``min(3t + 1, n - 1)`` (the middle one;
:func:`asrkit.features.stack.label_frame_indices`).

**Phone instances at 30 ms.** A 30 ms frame belongs to the *phone instance* of the 10 ms frame whose label
it takes; a phone instance starts at 30 ms frame ``t`` when that instance differs from frame ``t - 1``'s.
This is the phone-identity change wherever the identity changes; for two consecutive instances of the
same phone (``... A | A ...``, a boundary only the 10 ms phone starts show) the boundary falls on the
first 30 ms frame whose label frame lies in the second instance. (The alternative "a start when the
10 ms alignment has a phone start anywhere in 3t..3t+2" can put the boundary one 30 ms frame earlier,
on a frame whose label still belongs to the first instance; the rule used here keeps phone identity,
instance and label frame consistent, and is what Kaldi's ``convert-ali --frame-subsampling-factor``
does in effect: each subsampled frame keeps the transition, hence the instance, of the frame it samples.)

**Lost phones.** An instance none of whose frames is a label frame vanishes at 30 ms. Every third 10 ms
frame is a label frame, and the last frame is one when ``n % 3 == 1``, so an instance of three or more
10 ms frames (the minimum of the three-state topology) is never lost; the number lost is counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from asrkit.features.stack import STACK, label_frame_indices


@dataclass
class ConvertCounts:
    """Totals of :func:`convert_to_30ms` over utterances (add them up with ``+=``)."""

    utterances: int = 0
    frames10: int = 0
    frames30: int = 0
    phones10: int = 0  # phone instances in the 10 ms alignments
    phones30: int = 0  # phone instances left at 30 ms
    lost: int = 0  # phones10 - phones30
    single_frame: int = 0  # instances with exactly one 30 ms frame

    def __iadd__(self, other: "ConvertCounts") -> "ConvertCounts":
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self

    def line(self) -> str:
        share = self.single_frame / max(self.phones30, 1)
        return (f"10->30 ms: {self.utterances} utterances, {self.frames10} -> {self.frames30} frames, "
                f"{self.phones10} phone instances, {self.lost} lost, {share:.1%} with one 30 ms frame")


def instance_ids(phones: np.ndarray, phone_starts: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 [n]: the phone instance (0, 1, ...) of each frame. An instance starts where ``phone_starts``
    is True (frame 0 always) or, without ``phone_starts``, where the phone id changes."""
    phones = np.asarray(phones).reshape(-1)
    n = len(phones)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if phone_starts is None:
        starts = np.r_[True, phones[1:] != phones[:-1]]
    else:
        starts = np.asarray(phone_starts, dtype=bool).reshape(-1).copy()
        if len(starts) != n:
            raise ValueError(f"phone_starts has {len(starts)} entries for {n} frames")
        starts[0] = True
        # a phone change is always a new instance, whatever the starts say
        starts[1:] |= phones[1:] != phones[:-1]
    return np.cumsum(starts) - 1


def convert_to_30ms(phones: np.ndarray, phone_starts: Optional[np.ndarray] = None,
                    factor: int = STACK) -> Tuple[np.ndarray, np.ndarray, ConvertCounts]:
    """Per-10 ms phone ids [n] (and 10 ms phone starts, needed to separate repeated phones) ->
    (phones30 int32 [T], starts30 bool [T], counts) with T = ceil(n / factor), by the frame rule and the
    instance rule of the module doc."""
    phones = np.asarray(phones).reshape(-1)
    n = len(phones)
    inst = instance_ids(phones, phone_starts)
    idx = label_frame_indices(n, factor)
    phones30 = phones[idx].astype(np.int32)
    inst30 = inst[idx]
    starts30 = np.r_[True, inst30[1:] != inst30[:-1]] if len(idx) else np.zeros(0, dtype=bool)
    n10 = int(inst[-1]) + 1 if n else 0
    n30 = int(starts30.sum())
    lengths = np.diff(np.r_[np.flatnonzero(starts30), len(starts30)])
    counts = ConvertCounts(utterances=1, frames10=n, frames30=len(idx), phones10=n10, phones30=n30,
                           lost=n10 - n30, single_frame=int((lengths == 1).sum()))
    return phones30, starts30.astype(bool), counts


def lost_phones(phones: np.ndarray, phone_starts: Optional[np.ndarray] = None, factor: int = STACK) -> np.ndarray:
    """Indices (into the 10 ms instances) of the phone instances that get no 30 ms frame."""
    inst = instance_ids(phones, phone_starts)
    if len(inst) == 0:
        return np.zeros(0, dtype=np.int64)
    kept = np.unique(inst[label_frame_indices(len(inst), factor)])
    return np.setdiff1d(np.arange(int(inst[-1]) + 1), kept)
