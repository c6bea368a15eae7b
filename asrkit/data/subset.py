"""Nested random subsets of a cut manifest chosen by hours (stage 14: the unlabelled-data sweep).

The cuts are put in one seeded random order (a function of the seed and the set of cut ids only, not of
the manifest's order) and a subset is the shortest prefix of that order holding at least the requested
hours. With one seed, a smaller request is therefore always inside a larger one (x1 inside x2 inside
x4), so the points of a sweep differ only in how much data they add. A request larger than the manifest
holds is refused rather than silently capped.
"""
from __future__ import annotations

import random
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

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
    """The cuts of a manifest, eagerly; a missing, unreadable or empty manifest raises SubsetError.
    (For small sets and tests; :func:`subset_manifest` streams the manifest instead.)"""
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


class ManifestDurations:
    """Ids and durations of a manifest from one streaming pass (numpy arrays, ~30 bytes a cut):
    ``ids`` (utf-8 bytes), ``durations`` (s), ``seconds`` (their sum, added in manifest order as
    ``sum(c.duration for c in cuts)`` does). Missing, unreadable, empty or duplicated: SubsetError."""

    def __init__(self, path: PathLike):
        from asrkit.data.lazy import iter_manifest_dicts

        p = Path(path)
        if not p.exists():
            raise SubsetError(f"cuts manifest not found: {p}")
        ids, durs, seconds = [], array("d"), 0.0
        try:
            for d in iter_manifest_dicts(p):
                ids.append(d["id"].encode("utf-8"))
                durs.append(d["duration"])
                seconds += d["duration"]
                if len(ids) >= 65536:  # keep the python objects few: pack them as we go
                    self._pack(ids)
        except (ValueError, KeyError, OSError, EOFError) as e:
            raise SubsetError(f"{p}: cannot read the cuts manifest: {e!r}") from e
        self._pack(ids)
        self.ids = np.concatenate(self._parts) if self._parts else np.zeros(0, dtype="S1")
        del self._parts
        if not len(self.ids):
            raise SubsetError(f"{p}: the cuts manifest is empty")
        self.durations = np.frombuffer(durs, dtype=np.float64)
        self.seconds = seconds
        self.by_id = np.argsort(self.ids, kind="stable")  # positions in the order of sorted(ids)
        sorted_ids = self.ids[self.by_id]
        dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
        if len(dup):
            raise SubsetError(f"{p}: cut {sorted_ids[dup[0]].decode()} appears twice")

    def _pack(self, ids: list) -> None:
        if not hasattr(self, "_parts"):
            self._parts = []
        if ids:
            self._parts.append(np.array(ids, dtype=bytes))
            ids.clear()

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    def seeded_positions(self, seed: int) -> np.ndarray:
        """Manifest positions in the order of :func:`seeded_order` (the same shuffle, drawn on indices)."""
        perm = np.arange(len(self.ids))
        random.Random(seed).shuffle(perm)  # shuffle's draws depend on the length only: as on the id list
        return self.by_id[perm]


def total_hours(cuts: Sequence) -> float:
    return sum(c.duration for c in cuts) / 3600.0


def seeded_order(ids: Sequence[str], seed: int) -> List[str]:
    """The ids sorted, then shuffled once with ``seed``: the same order whatever the manifest's order."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    return order


def check_request(name: str, hours: float, total: float, num_cuts: int) -> None:
    """A request of ``hours`` from a set of ``total`` hours and ``num_cuts`` cuts: positive, and at most
    the set (up to rounding of the hours printed or computed by a caller); else SubsetError naming ``name``."""
    if not hours > 0:
        raise SubsetError(f"{name}: asked for {hours} h; the request must be positive")
    if hours > total * (1 + 1e-6):
        raise SubsetError(f"{name}: asked for {hours:.4f} h but it holds only {total:.4f} h ({num_cuts} cuts); "
                          f"ask for at most {total:.4f} h (a ratio of at most the full set's)")


def requested_hours(hours: Optional[float], ratio: Optional[float], ratio_of: Optional[PathLike],
                    hours_of: Callable[[PathLike], float]) -> Tuple[float, Optional[float]]:
    """``(hours, labelled hours or None)`` of a request given as ``hours``, or as ``ratio`` times the hours
    of the manifest ``ratio_of`` (read by ``hours_of``); an incomplete or bad request: SubsetError."""
    if (hours is None) == (ratio is None):
        raise SubsetError("give either hours or ratio (with ratio_of)")
    if ratio is None:
        return hours, None
    if ratio_of is None:
        raise SubsetError("a ratio needs ratio_of: the manifest whose hours it multiplies")
    if not ratio > 0:
        raise SubsetError(f"ratio must be positive, got {ratio}")
    labelled = hours_of(ratio_of)
    if labelled <= 0:
        raise SubsetError(f"{ratio_of}: the cuts have no duration; cannot take a ratio of it")
    return ratio * labelled, labelled


def nested_subset(cuts: Sequence, hours: float, seed: int, name: str = "cuts") -> Tuple[list, float]:
    """``(cuts, hours)``: the shortest prefix of the seeded order with at least ``hours`` of audio, the
    cuts in their manifest order. ``name`` (the manifest) appears in errors."""
    check_request(name, hours, total_hours(cuts), len(cuts))
    dur = {c.id: c.duration for c in cuts}
    chosen, got = set(), 0.0
    for cid in seeded_order(list(dur), seed):
        if got >= hours * 3600.0 * (1 - 1e-9):
            break
        chosen.add(cid)
        got += dur[cid]
    return [c for c in cuts if c.id in chosen], got / 3600.0


def nested_positions(man: ManifestDurations, hours: float, seed: int, name: str = "cuts") -> Tuple[np.ndarray, float]:
    """:func:`nested_subset` on a :class:`ManifestDurations`: ``(mask of the chosen positions, hours)``."""
    check_request(name, hours, man.hours, len(man))
    chosen = np.zeros(len(man), dtype=bool)
    got, want = 0.0, hours * 3600.0 * (1 - 1e-9)
    durs = man.durations
    for pos in man.seeded_positions(seed).tolist():
        if got >= want:
            break
        chosen[pos] = True
        got += float(durs[pos])
    return chosen, got / 3600.0


def subset_manifest(cuts_path: PathLike, out: PathLike, seed: int = 0, hours: Optional[float] = None,
                    ratio: Optional[float] = None, ratio_of: Optional[PathLike] = None) -> SubsetInfo:
    """Write the nested subset of ``cuts_path`` holding ``hours``, or ``ratio`` times the hours of the
    manifest ``ratio_of`` (e.g. the labelled cuts), to ``out`` atomically; returns what it holds.

    Two streaming passes over the manifest (ids and durations, then the chosen cuts copied line by
    line), so memory grows by about 30 bytes a cut, not by the cuts themselves."""
    from asrkit.data.lazy import copy_manifest_lines

    hours, labelled = requested_hours(hours, ratio, ratio_of, lambda p: ManifestDurations(p).hours)
    man = ManifestDurations(cuts_path)
    chosen, got = nested_positions(man, hours, seed, name=str(cuts_path))
    n = copy_manifest_lines(cuts_path, out, chosen)
    return SubsetInfo(source=str(cuts_path), source_cuts=len(man), source_hours=man.hours, seed=seed,
                      hours_requested=hours, cuts=n, hours=got, ratio_requested=ratio,
                      ratio_of=str(ratio_of) if ratio_of is not None else None, labelled_hours=labelled,
                      ratio=got / labelled if labelled else None, out=str(out))
