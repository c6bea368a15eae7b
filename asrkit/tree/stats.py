"""Tree statistics: diagonal-Gaussian sufficient statistics per phone context and pdf-class.

This is the Python counterpart of Kaldi's ``acc-tree-stats`` / ``sum-tree-stats``. A *context* is a tuple
of ``context_width`` (N) phone ids, the central phone at ``central_position`` (P), and 0 where there is
no phone (utterance edges), exactly as in Kaldi's event vectors: keys ``0..N-1`` are the context
positions and key ``-1`` (``PDF_CLASS_KEY``, Kaldi's ``kPdfClass``) is the pdf-class (HMM state's pdf-class).

For each distinct (context, pdf-class) the statistics are the frame count, the sum and the sum of squares
of the feature vectors. They are accumulated vectorised (packed integer keys, ``np.unique``, sorted
``np.add.reduceat``), are mergeable across jobs (:meth:`TreeStats.merge`, or ``a + b``) and are saved as
``.npz`` (:meth:`TreeStats.save` / :meth:`TreeStats.load`).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from asrkit.utils.atomic import atomic_path

log = logging.getLogger(__name__)

PDF_CLASS_KEY = -1  # Kaldi's kPdfClass
DEFAULT_VAR_FLOOR = 0.01  # acc-tree-stats' --var-floor default
_LOG_2PI = math.log(2.0 * math.pi)
_BLOCK = 1 << 19  # frames reduced at a time (bounds the float64 copy of the features)


def gauss_objf(counts: np.ndarray, sums: np.ndarray, sumsqs: np.ndarray,
               var_floor: float = DEFAULT_VAR_FLOOR) -> np.ndarray:
    """Log-likelihood of the data under its own ML diagonal Gaussian, as Kaldi's ``GaussClusterable::Objf``.

    ``counts`` has shape [...], ``sums`` / ``sumsqs`` [..., D]. Entries with count <= 0 give 0. The variance
    is floored at ``var_floor``; the objective is ``count * (-0.5 * sum(var / floored_var)
    - 0.5 * sum(log floored_var) - 0.5 * D * log(2 pi))``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    pos = counts > 0
    c = np.where(pos, counts, 1.0)[..., None]
    mean = sums / c
    var = sumsqs / c - mean * mean
    floored = np.maximum(var, var_floor)
    dim = sums.shape[-1]
    per_frame = -0.5 * (var / floored).sum(-1) - 0.5 * np.log(floored).sum(-1) - 0.5 * dim * _LOG_2PI
    return np.where(pos, per_frame * counts, 0.0)


@dataclass
class TreeStats:
    """Sufficient statistics per distinct (context, pdf-class), sorted by context then pdf-class.

    Attributes: ``contexts`` int32 [M, N] (0 = no phone), ``pdf_classes`` int32 [M], ``counts`` float64 [M],
    ``sums`` and ``sumsqs`` float64 [M, D].
    """

    context_width: int
    central_position: int
    contexts: np.ndarray
    pdf_classes: np.ndarray
    counts: np.ndarray
    sums: np.ndarray
    sumsqs: np.ndarray

    def __post_init__(self) -> None:
        self.contexts = np.asarray(self.contexts, dtype=np.int32).reshape(-1, self.context_width)
        self.pdf_classes = np.asarray(self.pdf_classes, dtype=np.int32).reshape(-1)
        self.counts = np.asarray(self.counts, dtype=np.float64).reshape(-1)
        m = len(self.counts)
        self.sums = np.asarray(self.sums, dtype=np.float64)
        self.sumsqs = np.asarray(self.sumsqs, dtype=np.float64)
        if self.sums.ndim != 2 or self.sums.shape[0] != m:
            self.sums = self.sums.reshape(m, -1)
            self.sumsqs = self.sumsqs.reshape(m, -1)
        if not 0 <= self.central_position < self.context_width:
            raise ValueError(f"central_position {self.central_position} not in [0, {self.context_width})")
        if not (len(self.contexts) == len(self.pdf_classes) == m and self.sums.shape == self.sumsqs.shape):
            raise ValueError("TreeStats: inconsistent array shapes")

    # ------------------------------------------------------------------ basic properties
    @property
    def dim(self) -> int:
        return int(self.sums.shape[1])

    @property
    def num_contexts(self) -> int:
        return int(len(self.counts))

    @property
    def total_count(self) -> float:
        return float(self.counts.sum())

    @property
    def central_phones(self) -> np.ndarray:
        return self.contexts[:, self.central_position]

    def phones(self) -> np.ndarray:
        """Sorted distinct central phones that have statistics."""
        return np.unique(self.central_phones)

    def phone_num_pdf_classes(self) -> dict:
        """{central phone: 1 + highest pdf-class seen} (a guess of the topology from the data)."""
        out: dict = {}
        for p, c in zip(self.central_phones.tolist(), self.pdf_classes.tolist()):
            out[p] = max(out.get(p, 0), c + 1)
        return out

    def stacked(self) -> np.ndarray:
        """[M, 1 + 2D] float64: count, sums, sums of squares side by side (what the builder sums)."""
        return np.concatenate([self.counts[:, None], self.sums, self.sumsqs], axis=1)

    def objf(self, var_floor: float = DEFAULT_VAR_FLOOR) -> float:
        """Summed log-likelihood with every (context, pdf-class) its own Gaussian."""
        return float(gauss_objf(self.counts, self.sums, self.sumsqs, var_floor).sum())

    def phone_stats(self, pdf_classes: Optional[Sequence[int]] = None, position: Optional[int] = None):
        """Statistics summed per phone at ``position`` (default: the central one), optionally only over
        the given pdf-classes. Returns ``(phones, counts, sums, sumsqs)`` with ``phones`` sorted."""
        pos = self.central_position if position is None else position
        mask = np.ones(self.num_contexts, dtype=bool)
        if pdf_classes is not None:
            mask = np.isin(self.pdf_classes, np.asarray(list(pdf_classes), dtype=np.int32))
        keys = self.contexts[mask, pos]
        phones, inv = np.unique(keys, return_inverse=True)
        c, s, q = _reduce_by_index(inv, len(phones), self.counts[mask], self.sums[mask], self.sumsqs[mask])
        return phones, c, s, q

    # ------------------------------------------------------------------ merging and I/O
    def subset(self, mask: np.ndarray) -> "TreeStats":
        return TreeStats(self.context_width, self.central_position, self.contexts[mask],
                         self.pdf_classes[mask], self.counts[mask], self.sums[mask], self.sumsqs[mask])

    @classmethod
    def merge(cls, parts: Iterable["TreeStats"]) -> "TreeStats":
        """Sum statistics from several jobs (equal contexts are added)."""
        parts = [p for p in parts if p is not None]
        if not parts:
            raise ValueError("TreeStats.merge: nothing to merge")
        n, p0 = parts[0].context_width, parts[0].central_position
        dims = {p.dim for p in parts if p.num_contexts}
        if any(p.context_width != n or p.central_position != p0 for p in parts) or len(dims) > 1:
            raise ValueError("TreeStats.merge: parts differ in context width, central position or dimension")
        dim = dims.pop() if dims else parts[0].dim
        ctx = np.concatenate([p.contexts for p in parts])
        pdf = np.concatenate([p.pdf_classes for p in parts])
        keys = _pack(ctx, pdf)
        uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        c, s, q = _reduce_by_index(inv.reshape(-1), len(uniq),
                                   np.concatenate([p.counts for p in parts]),
                                   np.concatenate([p.sums.reshape(-1, dim) for p in parts]),
                                   np.concatenate([p.sumsqs.reshape(-1, dim) for p in parts]))
        return cls(n, p0, ctx[first], pdf[first], c, s, q)

    def __add__(self, other: "TreeStats") -> "TreeStats":
        return TreeStats.merge([self, other])

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write to ``path`` (``.npz``), atomically."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, context_width=self.context_width, central_position=self.central_position,
                         contexts=self.contexts, pdf_classes=self.pdf_classes, counts=self.counts,
                         sums=self.sums, sumsqs=self.sumsqs)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "TreeStats":
        try:
            with np.load(Path(path)) as z:
                return cls(int(z["context_width"]), int(z["central_position"]), z["contexts"],
                           z["pdf_classes"], z["counts"], z["sums"], z["sumsqs"])
        except (KeyError, ValueError, OSError) as e:
            raise ValueError(f"{path}: not a tree-statistics file ({e})") from e


def _pack(contexts: np.ndarray, pdf_classes: np.ndarray) -> np.ndarray:
    """Pack (context, pdf-class) into one int64 key that sorts like the tuple."""
    contexts = np.asarray(contexts, dtype=np.int64)
    pdf_classes = np.asarray(pdf_classes, dtype=np.int64)
    if contexts.size and (contexts.min() < 0 or pdf_classes.min() < 0):
        raise ValueError("phone ids and pdf-classes must be >= 0")
    base = int(contexts.max()) + 1 if contexts.size else 1
    cbase = int(pdf_classes.max()) + 1 if pdf_classes.size else 1
    if base ** contexts.shape[1] * cbase >= 2 ** 62:
        raise ValueError("too many phones / too wide a context to pack keys into int64")
    key = np.zeros(len(contexts), dtype=np.int64)
    for j in range(contexts.shape[1]):
        key = key * base + contexts[:, j]
    return key * cbase + pdf_classes


def _reduce_by_index(inv: np.ndarray, num: int, counts: np.ndarray, sums: np.ndarray, sumsqs: np.ndarray):
    """Sum rows sharing an index (``inv`` in [0, num)) with one sort and ``np.add.reduceat``."""
    dim = sums.shape[1]
    c = np.bincount(inv, weights=counts, minlength=num).astype(np.float64)
    s = np.zeros((num, dim))
    q = np.zeros((num, dim))
    if len(inv):
        order = np.argsort(inv, kind="stable")
        si = inv[order]
        starts = np.flatnonzero(np.r_[True, si[1:] != si[:-1]])
        idx = si[starts]
        s[idx] = np.add.reduceat(np.asarray(sums, dtype=np.float64)[order], starts, axis=0)
        q[idx] = np.add.reduceat(np.asarray(sumsqs, dtype=np.float64)[order], starts, axis=0)
    return c, s, q


def frame_contexts(phones: np.ndarray, *, context_width: int = 3, central_position: int = 1,
                   phone_starts: Optional[np.ndarray] = None,
                   utt_lengths: Optional[Sequence[int]] = None,
                   ci_phones: Optional[Sequence[int]] = None) -> np.ndarray:
    """Per-frame phone contexts [T, N] from per-frame phone ids [T].

    A phone instance is a run of equal phone ids, or, where ``phone_starts`` (bool [T]) is given, starts
    where it is True (needed to tell two consecutive instances of the same phone apart, e.g. from
    ``TransitionModel`` alignments). ``utt_lengths`` cuts the frames into utterances (contexts never cross
    an utterance edge; 0 is used there, as in Kaldi). Frames with phone 0 act as gaps (context 0 beside
    them). For ``ci_phones`` (context-independent phones, e.g. silence) the context positions other than
    the central one are 0, like acc-tree-stats' ``--ci-phones``.
    """
    phones = np.asarray(phones).reshape(-1)
    t = len(phones)
    n, p = int(context_width), int(central_position)
    if not 0 <= p < n:
        raise ValueError(f"central_position {p} not in [0, {n})")
    if t == 0:
        return np.zeros((0, n), dtype=np.int32)
    if phones.min() < 0:
        raise ValueError("phone ids must be >= 0")
    utt = np.zeros(t, dtype=np.int64)
    if utt_lengths is not None:
        lengths = np.asarray(utt_lengths, dtype=np.int64)
        if lengths.sum() != t or (lengths < 0).any():
            raise ValueError(f"utt_lengths sum to {lengths.sum()} but there are {t} frames")
        utt = np.repeat(np.arange(len(lengths)), lengths)
    new_utt = np.r_[True, utt[1:] != utt[:-1]]
    if phone_starts is None:
        starts = np.r_[True, phones[1:] != phones[:-1]] | new_utt
    else:
        starts = np.asarray(phone_starts, dtype=bool).reshape(-1)
        if len(starts) != t:
            raise ValueError(f"phone_starts has {len(starts)} entries for {t} frames")
        starts = starts | new_utt
    seg = np.cumsum(starts) - 1
    start_idx = np.flatnonzero(starts)
    seg_phone = phones[start_idx]
    if phone_starts is not None and (phones != seg_phone[seg]).any():
        bad = int(np.flatnonzero(phones != seg_phone[seg])[0])
        raise ValueError(f"frame {bad}: phone changes inside a phone instance given by phone_starts")
    seg_utt = utt[start_idx]
    nseg = len(start_idx)
    seg_ctx = np.zeros((nseg, n), dtype=np.int32)
    ids = np.arange(nseg)
    for j in range(n):
        nb = ids + (j - p)
        ok = (nb >= 0) & (nb < nseg)
        nbc = np.clip(nb, 0, nseg - 1)
        ok &= seg_utt[nbc] == seg_utt
        seg_ctx[:, j] = np.where(ok, seg_phone[nbc], 0)
    if ci_phones is not None and len(ci_phones) and n > 1:
        ci = np.isin(seg_phone, np.asarray(list(ci_phones)))
        keep = seg_ctx[ci, p]
        seg_ctx[ci] = 0
        seg_ctx[ci, p] = keep
    return seg_ctx[seg]


def accumulate_tree_stats(phones: np.ndarray, pdf_classes: np.ndarray, feats: np.ndarray, *,
                          context_width: int = 3, central_position: int = 1,
                          phone_starts: Optional[np.ndarray] = None,
                          utt_lengths: Optional[Sequence[int]] = None,
                          ci_phones: Optional[Sequence[int]] = None) -> TreeStats:
    """Accumulate tree statistics from per-frame phone ids, pdf-classes and features (like acc-tree-stats).

    ``phones`` int [T], ``pdf_classes`` int [T] (the HMM state's pdf-class), ``feats`` float [T, D]. One
    call may hold many utterances concatenated (give ``utt_lengths``). Frames with phone 0 are not
    counted (they are gaps; their number is logged). See :func:`frame_contexts` for the contexts.
    """
    phones = np.asarray(phones).reshape(-1)
    pdf_classes = np.asarray(pdf_classes).reshape(-1)
    feats = np.asarray(feats)
    if feats.ndim != 2 or not (len(phones) == len(pdf_classes) == len(feats)):
        raise ValueError(f"accumulate_tree_stats: phones {phones.shape}, pdf_classes {pdf_classes.shape} and "
                         f"feats {feats.shape} must be [T], [T], [T, D]")
    ctx = frame_contexts(phones, context_width=context_width, central_position=central_position,
                         phone_starts=phone_starts, utt_lengths=utt_lengths, ci_phones=ci_phones)
    keep = phones != 0
    if not keep.all():
        log.info("accumulate_tree_stats: %d of %d frames have phone 0 and are not counted",
                 int((~keep).sum()), len(phones))
        ctx, pdf_classes, feats = ctx[keep], pdf_classes[keep], feats[keep]
    if len(pdf_classes) and pdf_classes.min() < 0:
        raise ValueError("pdf-classes must be >= 0")
    keys = _pack(ctx, pdf_classes)
    order = np.argsort(keys, kind="stable")  # one sort: groups equal keys, in key order
    sk = keys[order]
    new = np.r_[True, sk[1:] != sk[:-1]] if len(sk) else np.zeros(0, dtype=bool)
    starts_all = np.flatnonzero(new)
    seg_sorted = np.cumsum(new) - 1  # distinct-key index of each sorted frame
    num, dim = len(starts_all), feats.shape[1]
    first = order[starts_all]
    counts = np.diff(np.r_[starts_all, len(sk)]).astype(np.float64)
    sums = np.zeros((num, dim))
    sumsqs = np.zeros((num, dim))
    for b in range(0, len(order), _BLOCK):
        o = order[b:b + _BLOCK]
        si = seg_sorted[b:b + _BLOCK]
        starts = np.flatnonzero(np.r_[True, si[1:] != si[:-1]])
        x = feats[o].astype(np.float64)
        idx = si[starts]
        sums[idx] += np.add.reduceat(x, starts, axis=0)
        np.multiply(x, x, out=x)
        sumsqs[idx] += np.add.reduceat(x, starts, axis=0)
    return TreeStats(context_width, central_position, ctx[first], pdf_classes[first], counts, sums, sumsqs)
