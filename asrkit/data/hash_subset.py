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
import logging
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

import numpy as np

from asrkit.data.subset import SubsetError, SubsetInfo, check_request, requested_hours

PathLike = Union[str, Path]
log = logging.getLogger(__name__)

BIN_BITS = 16  # histogram bins: 2**16 float64 sums, 512 KiB whatever the corpus


def cut_rank(cut_id: str, seed: int) -> int:
    """The cut's place in the seed's order: a 64-bit keyed blake2b of its id (uniform, independent per seed)."""
    key = int(seed).to_bytes(8, "little", signed=True)
    return int.from_bytes(hashlib.blake2b(cut_id.encode("utf-8"), digest_size=8, key=key).digest(), "big")


def _cuts_of(path: PathLike) -> Iterator[Tuple[str, float]]:
    """``(id, duration)`` of every cut, one streaming pass; missing or unreadable: SubsetError."""
    from asrkit.data.lazy import iter_manifest_dicts

    p = Path(path)
    if not p.exists():
        raise SubsetError(f"cuts manifest not found: {p}")
    try:
        for d in iter_manifest_dicts(p):
            yield d["id"], float(d["duration"])
    except (ValueError, KeyError, OSError, EOFError, TypeError) as e:
        raise SubsetError(f"{p}: cannot read the cuts manifest: {e!r}") from e


def manifest_hours(path: PathLike) -> float:
    """The hours of a manifest, one streaming pass (nothing kept per cut)."""
    return sum(dur for _, dur in _cuts_of(path)) / 3600.0


def hashed_threshold(path: PathLike, hours: float, seed: int) -> Tuple[Tuple[int, str], int, float, float]:
    """``((rank, id) of the last cut kept, cuts in the manifest, its seconds, seconds kept)``: passes 1-2."""
    shift = 64 - BIN_BITS
    per_bin = np.zeros(1 << BIN_BITS, dtype=np.float64)
    n, seconds = 0, 0.0
    for cid, dur in _cuts_of(path):
        per_bin[cut_rank(cid, seed) >> shift] += dur
        n += 1
        seconds += dur
    if not n:
        raise SubsetError(f"{path}: the cuts manifest is empty")
    check_request(str(path), hours, seconds / 3600.0, n)
    want = hours * 3600.0 * (1 - 1e-9)
    cum = np.cumsum(per_bin)
    # the first bin whose running sum reaches the request; a request at the whole set (within check_request's
    # rounding) may lie past the sum: then the last non-empty bin, so that every cut is kept
    last_bin = len(per_bin) - 1 - int(np.argmax(per_bin[::-1] > 0))  # a bool per bin, not a list of bins
    b = min(int(np.searchsorted(cum, want)), last_bin)
    got = float(cum[b - 1]) if b else 0.0
    boundary = sorted((rank, cid, dur) for cid, dur in _cuts_of(path)
                      if (rank := cut_rank(cid, seed)) >> shift == b)
    log.info("%s: %d cuts, %.3f h; the request crosses rank bin %d of %d (%d cuts)", path, n, seconds / 3600.0,
             b, len(per_bin), len(boundary))
    for rank, cid, dur in boundary:  # got < want before the first: at least one cut of the bin is kept
        last = (rank, cid)
        got += dur
        if got >= want:
            break
    return last, n, seconds, got


def hashed_subset_manifest(cuts_path: PathLike, out: PathLike, seed: int = 0, hours: Optional[float] = None,
                           ratio: Optional[float] = None, ratio_of: Optional[PathLike] = None) -> SubsetInfo:
    """:func:`asrkit.data.subset.subset_manifest` in hash order: the same arguments, checks and result
    fields, memory independent of the number of cuts."""
    from asrkit.data.lazy import ManifestError, copy_lines_where

    hours, labelled = requested_hours(hours, ratio, ratio_of, manifest_hours)
    last, n_source, seconds, got = hashed_threshold(cuts_path, hours, seed)

    def keep(i: int, line: str) -> bool:
        cid = json.loads(line)["id"]
        return (cut_rank(cid, seed), cid) <= last

    try:
        kept = copy_lines_where(cuts_path, out, keep, expect_lines=n_source)
    except ManifestError as e:
        raise SubsetError(str(e)) from e
    log.info("%s: %d of %d cuts, %.3f h -> %s", cuts_path, kept, n_source, got / 3600.0, out)
    return SubsetInfo(source=str(cuts_path), source_cuts=n_source, source_hours=seconds / 3600.0, seed=seed,
                      hours_requested=hours, cuts=kept, hours=got / 3600.0, ratio_requested=ratio,
                      ratio_of=str(ratio_of) if ratio_of is not None else None, labelled_hours=labelled,
                      ratio=got / 3600.0 / labelled if labelled else None, out=str(out))
