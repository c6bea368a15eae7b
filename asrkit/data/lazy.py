"""Manifests read as streams: one pass, one line at a time, never the whole set in memory.

lhotse's lazy readers (``CutSet.from_jsonl_lazy`` / ``load_manifest_lazy``) build a full cut object per
line; a pass that needs only ids and durations reads the JSON dicts here instead (``json.loads`` of
each line, about ten times cheaper). Writers go through a temporary file renamed when whole, so no
half-written manifest survives a crash.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple, Union

from asrkit.utils.atomic import atomic_path

PathLike = Union[str, os.PathLike]


class ManifestError(ValueError):
    """A manifest line that cannot be read; the message names the file and the line."""


def _open_text(path: Path, mode: str = "rt"):
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def iter_manifest_lines(path: PathLike) -> Iterator[str]:
    """The non-empty lines of a ``.jsonl`` / ``.jsonl.gz`` manifest, in order."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"manifest not found: {p}")
    if not (p.name.endswith(".jsonl") or p.name.endswith(".jsonl.gz")):
        raise ManifestError(f"{p}: only JSON-lines manifests (.jsonl, .jsonl.gz) can be streamed")
    with _open_text(p) as f:
        for line in f:
            if line.strip():
                yield line


def iter_manifest_dicts(path: PathLike) -> Iterator[Dict]:
    """The items of a JSON-lines manifest as plain dicts (no lhotse objects), in order."""
    for lineno, line in enumerate(iter_manifest_lines(path), 1):
        try:
            yield json.loads(line)
        except ValueError as e:
            raise ManifestError(f"{path}: line {lineno}: not JSON: {e}") from None


def open_cuts(path: PathLike):
    """A lazy lhotse CutSet over a manifest (``CutSet.from_jsonl_lazy``): cut objects one at a time."""
    from lhotse import CutSet

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"cuts manifest not found: {p}")
    if p.name.endswith(".jsonl") or p.name.endswith(".jsonl.gz"):
        return CutSet.from_jsonl_lazy(p)
    return CutSet.from_file(p)  # another format (json, yaml): lhotse reads it whole


def manifest_path_of(cuts) -> Optional[Path]:
    """The file a lazy lhotse CutSet reads from, or None (eager sets, lists, concatenations)."""
    data = getattr(cuts, "data", None)
    path = getattr(data, "path", None)
    if getattr(cuts, "is_lazy", False) and path is not None and type(data).__name__ in ("LazyManifestIterator", "LazyJsonlIterator"):
        return Path(path)
    return None


def copy_lines_where(src: PathLike, out: PathLike, keep: Callable[[int, str], bool],
                     expect_lines: Optional[int] = None) -> int:
    """Write the lines of ``src`` for which ``keep(i, line)`` is true to ``out`` (atomically), in order;
    returns how many. ``expect_lines``: the number of lines ``src`` had when it was first read (another
    count now: ManifestError, nothing written)."""
    n = read = 0
    with atomic_path(out) as tmp:
        with _open_text(Path(tmp), "wt") as f:
            for read, line in enumerate(iter_manifest_lines(src), 1):
                if expect_lines is not None and read > expect_lines:
                    break
                if keep(read - 1, line):
                    f.write(line if line.endswith("\n") else line + "\n")
                    n += 1
        if expect_lines is not None and read != expect_lines:
            more = "more than " if read > expect_lines else ""
            raise ManifestError(f"{src}: {more}{expect_lines if more else read} lines now, {expect_lines} when it "
                                f"was first read (changed?)")
    return n


def copy_manifest_lines(src: PathLike, out: PathLike, keep: Sequence[bool]) -> int:
    """Write the lines ``i`` of ``src`` with ``keep[i]`` to ``out`` (atomically); returns how many."""
    return copy_lines_where(src, out, lambda i, line: bool(keep[i]), expect_lines=len(keep))


def write_cuts_stream(cuts: Iterable, out: PathLike) -> int:
    """Write cut objects one at a time (lhotse's ``CutSet.open_writer``) to ``out``, atomically."""
    from lhotse import CutSet

    n = 0
    with atomic_path(out) as tmp:
        with CutSet.open_writer(tmp) as w:
            for c in cuts:
                w.write(c)
                n += 1
    return n
