"""Alignment quality: phone starts of an alignment against a true segmentation.

A segment is ``(label, start_seconds, duration_seconds)``. The i-th non-silence segment of the alignment
is compared with the i-th true segment when the two label sequences agree; otherwise the two sequences
are aligned by edit distance (kaldialign) and only pairs with equal labels are compared. Reported: how
many starts were compared, the share within 20 ms and within 50 ms, the mean absolute error.

Alignment frame t starts at ``t * frame_shift`` seconds (Kaldi's CTM convention).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import kaldialign
import numpy as np

Segment = Tuple[str, float, float]
EPS = "<eps>"


def alignment_segments(ali: np.ndarray, info, id2phone: Optional[Mapping[int, str]] = None,
                       frame_shift: float = 0.01, skip: Iterable = ()) -> List[Segment]:
    """Phone segments of an alignment (transition ids) using :class:`TransitionInfo` ``info``.
    ``skip``: phone ids or names to leave out (silence)."""
    ali = np.asarray(ali, dtype=np.int64)
    if len(ali) == 0:
        return []
    starts = np.flatnonzero(info.phone_starts(ali))
    ends = np.r_[starts[1:], len(ali)]
    skip = set(skip)
    out = []
    for b, e in zip(starts.tolist(), ends.tolist()):
        pid = int(info.phone[ali[b]])
        label = id2phone.get(pid, str(pid)) if id2phone is not None else str(pid)
        if pid in skip or label in skip:
            continue
        out.append((label, b * frame_shift, (e - b) * frame_shift))
    return out


def read_ctm(path: Union[str, Path]) -> Dict[str, List[Segment]]:
    """``<utt> <channel> <start> <dur> <label>`` lines -> {utt: segments in file order}."""
    out: Dict[str, List[Segment]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 5:
            raise ValueError(f"{path}:{n}: expected '<utt> <channel> <start> <dur> <label>', got {line!r}")
        out.setdefault(f[0], []).append((f[4], float(f[2]), float(f[3])))
    return out


@dataclass
class BoundaryStats:
    compared: int = 0
    within_20ms: int = 0
    within_50ms: int = 0
    abs_error_sum: float = 0.0
    hyp_segments: int = 0
    ref_segments: int = 0
    utts: int = 0
    utts_disagreeing: int = 0  # label sequences differed (edit-distance matching used)
    errors: List[float] = field(default_factory=list, repr=False)

    def add(self, other: "BoundaryStats") -> "BoundaryStats":
        for k in ("compared", "within_20ms", "within_50ms", "abs_error_sum", "hyp_segments", "ref_segments",
                  "utts", "utts_disagreeing"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.errors += other.errors
        return self

    @property
    def frac_20ms(self) -> float:
        return self.within_20ms / self.compared if self.compared else float("nan")

    @property
    def frac_50ms(self) -> float:
        return self.within_50ms / self.compared if self.compared else float("nan")

    @property
    def mean_abs_error(self) -> float:
        return self.abs_error_sum / self.compared if self.compared else float("nan")

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("errors")
        d.update(frac_20ms=round(self.frac_20ms, 4), frac_50ms=round(self.frac_50ms, 4),
                 mean_abs_error_ms=round(1000 * self.mean_abs_error, 2))
        return d

    def __str__(self) -> str:
        return (f"{self.compared} phone starts compared ({self.utts} utts, {self.utts_disagreeing} with differing "
                f"phone sequences): {100 * self.frac_20ms:.1f}% within 20 ms, {100 * self.frac_50ms:.1f}% within "
                f"50 ms, mean |error| {1000 * self.mean_abs_error:.1f} ms")


def matched_pairs(hyp: Sequence[str], ref: Sequence[str]) -> Tuple[List[Tuple[int, int]], bool]:
    """Index pairs (hyp i, ref j) to compare; True when the sequences agreed exactly."""
    if list(hyp) == list(ref):
        return [(i, i) for i in range(len(hyp))], True
    # align the label sequences (ref, hyp); i walks the hypothesis, j the reference
    ali = kaldialign.align(list(ref), list(hyp), EPS)
    pairs, i, j = [], 0, 0
    for a, b in ali:
        if a != EPS and b != EPS:
            if a == b:
                pairs.append((i, j))
            i += 1
            j += 1
        elif a == EPS:
            i += 1
        else:
            j += 1
    return pairs, False


def compare_boundaries(hyp: Sequence[Segment], ref: Sequence[Segment],
                       tolerances: Tuple[float, float] = (0.02, 0.05), offset: float = 0.0) -> BoundaryStats:
    """Compare the starts of ``hyp`` and ``ref`` segments (already without silence). ``offset`` is added
    to the reference times (e.g. a known delay of the synthetic audio)."""
    st = BoundaryStats(hyp_segments=len(hyp), ref_segments=len(ref), utts=1)
    pairs, agree = matched_pairs([s[0] for s in hyp], [s[0] for s in ref])
    st.utts_disagreeing = 0 if agree else 1
    for i, j in pairs:
        err = abs(hyp[i][1] - (ref[j][1] + offset))
        st.compared += 1
        st.abs_error_sum += err
        st.errors.append(err)
        st.within_20ms += err <= tolerances[0] + 1e-9
        st.within_50ms += err <= tolerances[1] + 1e-9
    return st


def corpus_boundaries(alis: Mapping[str, np.ndarray], refs: Mapping[str, Sequence[Segment]], info,
                      id2phone: Optional[Mapping[int, str]] = None, skip: Iterable = (),
                      ref_skip: Iterable = (), label_map: Optional[Callable[[str], str]] = None,
                      frame_shift: float = 0.01) -> BoundaryStats:
    """Sum of :func:`compare_boundaries` over utterances that have both an alignment and a reference.
    ``skip``: alignment phones to leave out (silence); ``ref_skip``: reference labels to leave out;
    ``label_map``: applied to both sides' labels (e.g. stress removal)."""
    tot = BoundaryStats()
    ref_skip = set(ref_skip)
    fmap = label_map or (lambda x: x)
    for utt, ali in alis.items():
        if utt not in refs:
            continue
        hyp = [(fmap(l), s, d) for l, s, d in alignment_segments(ali, info, id2phone, frame_shift, skip)]
        ref = [(fmap(l), s, d) for l, s, d in refs[utt] if l not in ref_skip]
        tot.add(compare_boundaries(hyp, ref))
    return tot


def word_segments(phone_segments: Sequence[Segment], words: Sequence[str],
                  prons: Mapping[str, Sequence[str]]) -> List[Segment]:
    """Group an alignment's non-silence phone segments into word segments, consuming each word's
    pronunciation length in turn (a forced alignment with one pronunciation per word follows them
    exactly). Stops early if the phones run out."""
    out, i = [], 0
    for w in words:
        n = len(prons[w].split() if isinstance(prons[w], str) else prons[w])
        seg = phone_segments[i:i + n]
        if len(seg) < n:
            break
        out.append((w, seg[0][1], seg[-1][1] + seg[-1][2] - seg[0][1]))
        i += n
    return out
