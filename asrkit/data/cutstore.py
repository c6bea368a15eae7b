"""A cut manifest held on disk, read by position: what a training set needs without its cuts in memory.

:class:`CutStore` makes one streaming pass over one or more JSON-lines manifests (``.jsonl.gz``): each
line is parsed as a plain dict once (``json.loads``; handed to a ``visit`` callback that extracts what
the caller needs, e.g. lengths) and copied, uncompressed, into an unlinked temporary spill file; the
store keeps only each line's offset and the cut ids (numpy arrays, about 30 bytes a cut). ``store[i]``
reads line ``i`` back with ``os.pread`` (positional, so DataLoader workers forked from the process
share the file descriptor safely) and builds the lhotse cut. Its cost is the disk: about the
uncompressed manifest's size, freed when the store is closed or the process exits.
"""
from __future__ import annotations

import json
import os
import tempfile
from array import array
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Sequence, Union

import numpy as np

from asrkit.data.lazy import ManifestError, iter_manifest_lines

PathLike = Union[str, os.PathLike]
Visit = Callable[[Dict], None]
_PACK = 65536  # ids kept as python objects before being packed into numpy


class CutStore:
    """Cuts of ``sources`` (manifest paths, in order) by position; duplicate ids are refused.

    ``visit(d)`` is called on each line's dict in order: it returns False to leave the cut out, raises
    (naming the cut) to refuse it. ``spill_dir``: where the temporary file lives (default: the
    system's temporary folder).
    """

    def __init__(self, sources: Sequence[PathLike], visit: Optional[Visit] = None,
                 spill_dir: Optional[PathLike] = None):
        self.sources = [Path(s) for s in sources]
        self._file = tempfile.TemporaryFile(prefix="asrkit-cuts-", suffix=".jsonl", dir=spill_dir)
        offsets, parts, ids, pos = array("q", [0]), [], [], 0
        for src in self.sources:
            for lineno, line in enumerate(iter_manifest_lines(src), 1):
                try:
                    d = json.loads(line)
                    cid = d["id"]
                except (ValueError, KeyError, TypeError) as e:
                    raise ManifestError(f"{src}: line {lineno}: not a cut: {e!r}") from None
                if visit is not None and visit(d) is False:
                    continue  # left out by the caller
                b = line.encode("utf-8")
                self._file.write(b)
                pos += len(b)
                offsets.append(pos)
                ids.append(cid.encode("utf-8"))
                if len(ids) >= _PACK:
                    parts.append(np.array(ids, dtype=bytes))
                    ids.clear()
        if ids:
            parts.append(np.array(ids, dtype=bytes))
        self._file.flush()
        self._fd = self._file.fileno()
        self.offsets = np.frombuffer(offsets, dtype=np.int64)
        self.ids = np.concatenate(parts) if parts else np.zeros(0, dtype="S1")
        if len(self.ids) > 1:
            s = np.sort(self.ids)
            dup = np.flatnonzero(s[1:] == s[:-1])
            if len(dup):
                where = ", ".join(str(p) for p in self.sources)
                raise ValueError(f"cut {s[dup[0]].decode()} appears twice in {where}")

    def __len__(self) -> int:
        return len(self.ids)

    def cut_id(self, i: int) -> str:
        return self.ids[i].decode("utf-8")

    def line(self, i: int) -> bytes:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return os.pread(self._fd, b - a, a)

    def __getitem__(self, i: int):
        from lhotse.serialization import deserialize_item

        if not -len(self) <= i < len(self):
            raise IndexError(f"cut position {i} outside 0..{len(self) - 1}")
        return deserialize_item(json.loads(self.line(i % len(self))))

    def __iter__(self) -> Iterator:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        self._file.close()

    def __getstate__(self):
        raise TypeError("a CutStore cannot be pickled (its spill file is an open descriptor): use DataLoader "
                        "workers started by fork, as on Linux by default")


def dict_sampling_rate(d: Dict) -> Optional[int]:
    f = d.get("features")
    return int(f["sampling_rate"]) if f else None


def dict_field_shape(d: Dict, name: str) -> Optional[Sequence[int]]:
    """The shape of custom field ``name`` of a serialised cut (None if absent)."""
    v = (d.get("custom") or {}).get(name)
    if v is None:
        return None
    if isinstance(v, dict):
        arr = v.get("array", v)  # TemporalArray {"array": {... "shape"}} or Array {"shape"}
        if isinstance(arr, dict) and "shape" in arr:
            return arr["shape"]
    return ()  # present but not an array


def is_manifest(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def as_sources(cuts) -> Optional[list]:
    """Manifest paths behind ``cuts`` (a path, a lazy lhotse CutSet reading one, or a list of paths),
    or None when ``cuts`` are cut objects in memory."""
    from asrkit.data.lazy import manifest_path_of

    if is_manifest(cuts):
        return [Path(cuts)]
    p = manifest_path_of(cuts)
    if p is not None:
        return [p]
    if isinstance(cuts, (list, tuple)) and cuts and all(is_manifest(x) for x in cuts):
        return [Path(x) for x in cuts]
    return None

