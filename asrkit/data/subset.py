"""Nested random subsets of a cut manifest chosen by hours (stage 14: the unlabelled-data sweep).

The cuts are put in one seeded random order (a function of the seed and the set of cut ids only, not of
the manifest's order) and a subset is the shortest prefix of that order holding at least the requested
hours. With one seed, a smaller request is therefore always inside a larger one (x1 inside x2 inside
x4), so the points of a sweep differ only in how much data they add. A request larger than the manifest
holds is refused rather than silently capped.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

PathLike = Union[str, Path]


class SubsetError(ValueError):
    """A subset that cannot be made (bad manifest, impossible request); the message names the file."""


@dataclass
class SubsetInfo:
    source: str  # the manifest subsetted
    source_cuts: int
    source_hours: float
    seed: int
    hours_requested: float
    cuts: int  # what the subset holds
    hours: float
    ratio_requested: Optional[float] = None  # --ratio of --ratio-of's hours, where the request was one
    ratio_of: Optional[str] = None
    labelled_hours: Optional[float] = None  # hours of ratio_of
    ratio: Optional[float] = None  # hours / labelled_hours (what the subset really holds)
    out: Optional[str] = None

    def to_dict(self):
        return asdict(self)


def read_cuts(path: PathLike) -> list:
    """The cuts of a manifest, eagerly; a missing, unreadable or empty manifest raises SubsetError."""
    from lhotse import CutSet

    p = Path(path)
    if not p.exists():
        raise SubsetError(f"cuts manifest not found: {p}")
    try:
        cuts = list(CutSet.from_file(p))
    except Exception as e:  # lhotse raises many kinds on a corrupt manifest: name the file
        raise SubsetError(f"{p}: cannot read the cuts manifest: {e}") from e
    if not cuts:
        raise SubsetError(f"{p}: the cuts manifest is empty")
    ids = [c.id for c in cuts]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SubsetError(f"{p}: cut {dup} appears twice")
    return cuts


def total_hours(cuts: Sequence) -> float:
    return sum(c.duration for c in cuts) / 3600.0


def seeded_order(ids: Sequence[str], seed: int) -> List[str]:
    """The ids sorted, then shuffled once with ``seed``: the same order whatever the manifest's order."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    return order


def nested_subset(cuts: Sequence, hours: float, seed: int, name: str = "cuts") -> Tuple[list, float]:
    """``(cuts, hours)``: the shortest prefix of the seeded order with at least ``hours`` of audio, the
    cuts in their manifest order. ``name`` (the manifest) appears in errors."""
    if not hours > 0:
        raise SubsetError(f"{name}: asked for {hours} h; the request must be positive")
    total = total_hours(cuts)
    # a request equal to the whole set, up to rounding of the hours printed or computed by a caller
    if hours > total * (1 + 1e-6):
        raise SubsetError(f"{name}: asked for {hours:.4f} h but it holds only {total:.4f} h ({len(cuts)} cuts); "
                          f"ask for at most {total:.4f} h (a ratio of at most the full set's)")
    dur = {c.id: c.duration for c in cuts}
    chosen, got = set(), 0.0
    for cid in seeded_order(list(dur), seed):
        if got >= hours * 3600.0 * (1 - 1e-9):
            break
        chosen.add(cid)
        got += dur[cid]
    return [c for c in cuts if c.id in chosen], got / 3600.0


def subset_manifest(cuts_path: PathLike, out: PathLike, seed: int = 0, hours: Optional[float] = None,
                    ratio: Optional[float] = None, ratio_of: Optional[PathLike] = None) -> SubsetInfo:
    """Write the nested subset of ``cuts_path`` holding ``hours``, or ``ratio`` times the hours of the
    manifest ``ratio_of`` (e.g. the labelled cuts), to ``out`` atomically; returns what it holds."""
    from lhotse import CutSet

    from asrkit.utils.atomic import atomic_path

    if (hours is None) == (ratio is None):
        raise SubsetError("give either hours or ratio (with ratio_of)")
    if ratio is not None and ratio_of is None:
        raise SubsetError("a ratio needs ratio_of: the manifest whose hours it multiplies")
    cuts = read_cuts(cuts_path)
    labelled = None
    if ratio is not None:
        if not ratio > 0:
            raise SubsetError(f"ratio must be positive, got {ratio}")
        labelled = total_hours(read_cuts(ratio_of))
        if labelled <= 0:
            raise SubsetError(f"{ratio_of}: the cuts have no duration; cannot take a ratio of it")
        hours = ratio * labelled
    chosen, got = nested_subset(cuts, hours, seed, name=str(cuts_path))
    with atomic_path(out) as tmp:
        CutSet.from_cuts(chosen).to_file(tmp)
    return SubsetInfo(source=str(cuts_path), source_cuts=len(cuts), source_hours=total_hours(cuts), seed=seed,
                      hours_requested=hours, cuts=len(chosen), hours=got, ratio_requested=ratio,
                      ratio_of=str(ratio_of) if ratio_of is not None else None, labelled_hours=labelled,
                      ratio=got / labelled if labelled else None, out=str(out))
