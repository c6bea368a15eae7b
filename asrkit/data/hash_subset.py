"""Nested subsets in hash order: the same contract as :mod:`asrkit.data.subset`, in memory that does not
grow with the manifest.

The seeded shuffle of :mod:`asrkit.data.subset` needs every cut id at once (~70 bytes a cut: 24 GiB at
the 3.6 x 10^8 cuts of 1 M hours, docs/scale.md). Here each cut's place in the order is its own
``rank``, a 64-bit keyed hash (blake2b, key = the seed) of its id, so the order is still a function of
the seed and the set of ids only (not of the manifest's order), a smaller request is still inside a
larger one with the same seed, and the subset is still the shortest prefix of that order holding the
requested hours. Three streaming passes over the manifest:

1. the seconds per rank bin (the rank's top 16 bits: a 512 KiB histogram) and in all;
2. the cuts of the bin where the requested hours are crossed (1 / 65,536 of the set, on average),
   sorted by rank, give the exact last rank kept;
3. the lines whose rank is at most that one are copied, in manifest order.

It is an option (``subset_cuts --order hash``): the hash order picks other cuts than the shuffle, so
the recipes' default sweep keeps the shuffle and its results. Duplicate ids are not detected (that
needs every id): a duplicated line has its twin's rank, so both are kept or both left out.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from asrkit.data.subset import SubsetError, SubsetInfo

PathLike = Union[str, Path]

BIN_BITS = 16  # histogram bins: 2**16 float64 sums, 512 KiB whatever the corpus


def cut_rank(cut_id: str, seed: int) -> int:
    """The cut's place in the seed's order: a 64-bit keyed blake2b of its id (uniform, independent per seed)."""
    key = int(seed).to_bytes(8, "little", signed=True)
    return int.from_bytes(hashlib.blake2b(cut_id.encode("utf-8"), digest_size=8, key=key).digest(), "big")


def _ranked_lines(path: PathLike, seed: int):
    """``(line number, rank, id, duration)`` of every cut, one streaming pass; unreadable: SubsetError."""
    from asrkit.data.lazy import iter_manifest_dicts

    p = Path(path)
    if not p.exists():
        raise SubsetError(f"cuts manifest not found: {p}")
    try:
        for i, d in enumerate(iter_manifest_dicts(p)):
            cid = d["id"]
            yield i, cut_rank(cid, seed), cid, float(d["duration"])
    except (ValueError, KeyError, OSError, EOFError, TypeError) as e:
        raise SubsetError(f"{p}: cannot read the cuts manifest: {e!r}") from e


def manifest_seconds(path: PathLike) -> Tuple[int, float]:
    """``(cuts, seconds)`` of a manifest in one streaming pass (no ids kept)."""
    n, seconds = 0, 0.0
    for _, _, _, dur in _ranked_lines(path, 0):
        n += 1
        seconds += dur
    if not n:
        raise SubsetError(f"{path}: the cuts manifest is empty")
    return n, seconds


def hashed_threshold(path: PathLike, hours: float, seed: int) -> Tuple[Tuple[int, str], int, float, float]:
    """``((rank, id) of the last cut kept, cuts in the manifest, its seconds, seconds kept)``: passes 1-2."""
    if not hours > 0:
        raise SubsetError(f"{path}: asked for {hours} h; the request must be positive")
    shift = 64 - BIN_BITS
    per_bin = np.zeros(1 << BIN_BITS, dtype=np.float64)
    n, seconds = 0, 0.0
    for _, rank, _, dur in _ranked_lines(path, seed):
        per_bin[rank >> shift] += dur
        n += 1
        seconds += dur
    if not n:
        raise SubsetError(f"{path}: the cuts manifest is empty")
    if hours > seconds / 3600.0 * (1 + 1e-6):
        raise SubsetError(f"{path}: asked for {hours:.4f} h but it holds only {seconds / 3600.0:.4f} h ({n} cuts); "
                          f"ask for at most {seconds / 3600.0:.4f} h (a ratio of at most the full set's)")
    want = hours * 3600.0 * (1 - 1e-9)
    cum = np.cumsum(per_bin)
    # the bin where the running sum reaches the request (the last non-empty one when rounding of the
    # request's tolerance puts it past the end)
    last_bin = len(per_bin) - 1 - int(np.argmax(per_bin[::-1] > 0))  # a bool per bin, not the non-empty bins' list
    b = int(min(np.searchsorted(cum, want * (1 - 1e-12)), last_bin))
    got = float(cum[b - 1]) if b else 0.0
    boundary: List[Tuple[int, str, float]] = [(rank, cid, dur) for _, rank, cid, dur in _ranked_lines(path, seed)
                                              if rank >> shift == b]
    boundary.sort()
    last = None
    for rank, cid, dur in boundary:
        if last is not None and got >= want:
            break
        last = (rank, cid)
        got += dur
    return last, n, seconds, got


def hashed_subset_manifest(cuts_path: PathLike, out: PathLike, seed: int = 0, hours: Optional[float] = None,
                           ratio: Optional[float] = None, ratio_of: Optional[PathLike] = None) -> SubsetInfo:
    """:func:`asrkit.data.subset.subset_manifest` in hash order: the same arguments, checks and result
    fields, memory independent of the number of cuts."""
    from asrkit.data.lazy import ManifestError, copy_lines_where

    if (hours is None) == (ratio is None):
        raise SubsetError("give either hours or ratio (with ratio_of)")
    if ratio is not None and ratio_of is None:
        raise SubsetError("a ratio needs ratio_of: the manifest whose hours it multiplies")
    labelled = None
    if ratio is not None:
        if not ratio > 0:
            raise SubsetError(f"ratio must be positive, got {ratio}")
        labelled = manifest_seconds(ratio_of)[1] / 3600.0
        if labelled <= 0:
            raise SubsetError(f"{ratio_of}: the cuts have no duration; cannot take a ratio of it")
        hours = ratio * labelled
    last, n_source, seconds, got = hashed_threshold(cuts_path, hours, seed)
    def keep(i: int, line: str) -> bool:
        cid = json.loads(line)["id"]
        return (cut_rank(cid, seed), cid) <= last

    try:
        kept = copy_lines_where(cuts_path, out, keep, expect_lines=n_source)
    except ManifestError as e:
        raise SubsetError(str(e)) from e
    return SubsetInfo(source=str(cuts_path), source_cuts=n_source, source_hours=seconds / 3600.0, seed=seed,
                      hours_requested=hours, cuts=kept, hours=got / 3600.0, ratio_requested=ratio,
                      ratio_of=str(ratio_of) if ratio_of is not None else None, labelled_hours=labelled,
                      ratio=got / 3600.0 / labelled if labelled else None, out=str(out))
