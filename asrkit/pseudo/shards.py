"""Top-k pseudo-label shards: the on-disk format, the writer, the checksum, the reader.

A **shard** (``shard-00000.bin``) holds the teacher's top-k posteriors of many utterances in one file:

```
offset 0   b"ASRKPSL1"                      magic (8 bytes)
offset 8   uint64 little-endian H           length of the JSON header
offset 16  JSON header (utf-8), H bytes     {"format", "k", "num_senones", "num_frames", "cut_ids",
                                             "frames", "arrays": {name: [offset, dtype, shape]}}
           zero padding to a multiple of 64
data       ids   (N, k) uint16   senone ids, best first
           probs (N, k) float16  the teacher's posteriors of those ids (not renormalised)
           mass  (N,)   float16  the probability mass the top k held (sum of the float32 probs)
```

N is the total number of 30 ms frames of the shard; utterance ``i`` owns frames
``offsets[i]:offsets[i+1]`` with ``offsets = cumsum([0] + frames)``. Array offsets are relative to the
start of the data section (64-byte aligned), so the file is read with ``np.memmap`` without copying.
Cost: ``4 * k + 2`` bytes a frame (82 B at k = 20) plus the header.

The **checksum** of a shard is ``blake2b`` (32-byte digest) of the whole file, written as
``"blake2b:<hex>"``; it is recorded in the shard's sidecar (``shard-00000.json``) and in the index. The
**tree checksum** is the same hash of the senone tree file (``exp/senone/tree``) that produced the
teacher's targets: a student refuses labels made with another tree (:class:`PseudoLabelReader`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import struct
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from asrkit.utils.atomic import atomic_path

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
MAGIC = b"ASRKPSL1"
SHARD_FORMAT = "asrkit-pseudo-shard-v1"
INDEX_FORMAT = "asrkit-pseudo-index-v1"
ALIGN = 64
HASH_CHUNK = 1 << 22


class ShardError(ValueError):
    """A shard that cannot be used (bad magic, truncated, checksum mismatch); names the file."""

    def __init__(self, path: PathLike, message: str):
        super().__init__(f"{path}: {message}")
        self.path = Path(path)


class ChecksumError(ShardError):
    pass


class LabelMismatchError(ValueError):
    """Labels written for another senone inventory (num_senones or tree checksum differ)."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.bin"


def meta_name(index: int) -> str:
    return f"shard-{index:05d}.json"


def blake2b_bytes(data: bytes) -> str:
    return "blake2b:" + hashlib.blake2b(data, digest_size=32).hexdigest()


def file_checksum(path: PathLike) -> str:
    """``blake2b:<hex>`` of a file's bytes (read in 4 MiB chunks)."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while True:
            chunk = f.read(HASH_CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return "blake2b:" + h.hexdigest()


def tree_checksum(path: PathLike) -> str:
    """The checksum of a senone tree file, as recorded in shard indices."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"senone tree not found: {p}")
    return file_checksum(p)


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def encode_shard(cut_ids: Sequence[str], ids: Sequence[np.ndarray], probs: Sequence[np.ndarray],
                 mass: Sequence[np.ndarray], k: int, num_senones: int) -> bytes:
    """The bytes of a shard from per-utterance arrays ``ids`` (T_i, k), ``probs`` (T_i, k), ``mass`` (T_i,)."""
    if not (len(cut_ids) == len(ids) == len(probs) == len(mass)):
        raise ValueError("encode_shard: cut_ids, ids, probs and mass differ in length")
    if num_senones > 65536:
        raise ValueError(f"num_senones {num_senones} does not fit uint16 ids")
    frames = []
    for cid, i, p, m in zip(cut_ids, ids, probs, mass):
        if i.ndim != 2 or i.shape[1] != k or p.shape != i.shape or m.shape != (i.shape[0],):
            raise ValueError(f"cut {cid}: top-k arrays of shapes {i.shape}, {p.shape}, {m.shape} (k={k})")
        frames.append(int(i.shape[0]))
    N = sum(frames)
    empty2 = np.zeros((0, k))
    ids_a = np.ascontiguousarray(np.concatenate([np.asarray(x) for x in ids] or [empty2]).astype("<u2"))
    probs_a = np.ascontiguousarray(np.concatenate([np.asarray(x) for x in probs] or [empty2]).astype("<f2"))
    mass_a = np.ascontiguousarray(np.concatenate([np.asarray(x) for x in mass] or [np.zeros(0)]).astype("<f2"))
    arrays, off = {}, 0
    for name, a in (("ids", ids_a), ("probs", probs_a), ("mass", mass_a)):
        arrays[name] = [off, a.dtype.str, list(a.shape)]
        off = _align(off + a.nbytes)
    header = {"format": SHARD_FORMAT, "k": int(k), "num_senones": int(num_senones), "num_frames": N,
              "cut_ids": list(cut_ids), "frames": frames, "arrays": arrays}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    data_start = _align(16 + len(hb))
    parts = [MAGIC, struct.pack("<Q", len(hb)), hb, b"\0" * (data_start - 16 - len(hb))]
    pos = 0
    for a in (ids_a, probs_a, mass_a):
        parts.append(a.tobytes())
        pad = _align(pos + a.nbytes) - pos - a.nbytes
        parts.append(b"\0" * pad)
        pos += a.nbytes + pad
    return b"".join(parts)


def write_shard(path: PathLike, cut_ids, ids, probs, mass, k: int, num_senones: int) -> Tuple[str, int]:
    """Write a shard atomically (temporary name, rename when whole); return (checksum, bytes)."""
    data = encode_shard(cut_ids, ids, probs, mass, k, num_senones)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
    return blake2b_bytes(data), len(data)


class Shard:
    """A shard opened with ``np.memmap``: ``len(shard)`` utterances, ``shard[i] -> (cut_id, ids, probs, mass)``.

    ``checksum``: if given, the file's blake2b is verified first and a mismatch raises
    :class:`ChecksumError` naming the path (labelling again regenerates the shard).
    """

    def __init__(self, path: PathLike, checksum: Optional[str] = None):
        self.path = Path(path)
        if not self.path.exists():
            raise ShardError(self.path, "shard file not found (run the labelling job again)")
        if checksum is not None:
            actual = file_checksum(self.path)
            if actual != checksum:
                raise ChecksumError(self.path, f"checksum mismatch: index says {checksum}, file has {actual}; "
                                               f"the shard is corrupt: re-run pseudo-labelling to regenerate it")
        size = self.path.stat().st_size
        with open(self.path, "rb") as f:
            head = f.read(16)
            if len(head) < 16 or head[:8] != MAGIC:
                raise ShardError(self.path, "not an asrkit pseudo-label shard (bad magic)")
            (hlen,) = struct.unpack("<Q", head[8:16])
            if 16 + hlen > size:
                raise ShardError(self.path, "truncated header")
            try:
                self.header = json.loads(f.read(hlen).decode("utf-8"))
            except ValueError as e:
                raise ShardError(self.path, f"unreadable header: {e}") from None
        h = self.header
        self.k = int(h["k"])
        self.num_senones = int(h["num_senones"])
        self.cut_ids: List[str] = list(h["cut_ids"])
        self.frames: List[int] = [int(x) for x in h["frames"]]
        self.offsets = np.concatenate([[0], np.cumsum(self.frames, dtype=np.int64)])
        data_start = _align(16 + hlen)
        self._arrays: Dict[str, np.ndarray] = {}
        for name, (off, dtype, shape) in h["arrays"].items():
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            if data_start + off + nbytes > size:
                raise ShardError(self.path, f"truncated: array {name!r} ends past the end of the file")
            if nbytes == 0:
                self._arrays[name] = np.zeros(shape, dtype=dtype)
            else:
                self._arrays[name] = np.memmap(self.path, dtype=dtype, mode="r", offset=data_start + off,
                                               shape=tuple(shape))
        self.ids, self.probs, self.mass = self._arrays["ids"], self._arrays["probs"], self._arrays["mass"]

    @property
    def num_frames(self) -> int:
        return int(self.offsets[-1])

    def __len__(self) -> int:
        return len(self.cut_ids)

    def __getitem__(self, i: int) -> Tuple[str, np.ndarray, np.ndarray, np.ndarray]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.cut_ids[i], self.ids[a:b], self.probs[a:b], self.mass[a:b]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def load_index(path: PathLike) -> Dict:
    p = Path(path)
    if p.is_dir():
        p = p / "index.json"
    if not p.exists():
        raise FileNotFoundError(f"pseudo-label index not found: {p} (run pseudo_label --merge-index)")
    with open(p, encoding="utf-8") as f:
        idx = json.load(f)
    if idx.get("format") != INDEX_FORMAT:
        raise ValueError(f"{p}: not an asrkit pseudo-label index (format {INDEX_FORMAT})")
    return idx


def check_compatible(index: Dict, num_senones: Optional[int] = None, tree_checksum: Optional[str] = None,
                     where: str = "pseudo-label index") -> None:
    """Raise :class:`LabelMismatchError` if labels were made for another senone inventory."""
    if num_senones is not None and int(index["num_senones"]) != int(num_senones):
        raise LabelMismatchError(
            f"{where}: labels have num_senones={index['num_senones']} but the trainer expects {num_senones}; "
            f"they were produced by a teacher of another senone inventory")
    if tree_checksum is not None and index.get("tree_checksum") != tree_checksum:
        raise LabelMismatchError(
            f"{where}: labels were made with senone tree {index.get('tree_checksum')} but the trainer's tree "
            f"is {tree_checksum}; senone ids would mean different things: relabel with the matching teacher")


def renormalised(probs: np.ndarray) -> np.ndarray:
    """float32 top-k probabilities scaled to sum to one per frame: what training reads (one arithmetic for
    every loader, so the shard loaders give the same targets bit for bit)."""
    p = probs.astype(np.float32)
    s = p.sum(axis=1, keepdims=True)
    np.maximum(s, 1e-30, out=s)
    p /= s
    return p


ID_TABLE, LOC_TABLE, INDEX_HEAD = "index.ids.npy", "index.loc.npy", "index.head.json"


class IdTable:
    """Where each labelled utterance is: ids sorted (fixed-width utf-8 bytes) with a parallel
    ``(shard, row, frames)`` int64 table, looked up by binary search. Saved as two ``.npy`` files beside
    ``index.json`` and opened memory-mapped, so a reader holds no per-utterance python object: a lookup
    touches ~log2(n) pages."""

    def __init__(self, ids: np.ndarray, loc: np.ndarray):
        self.ids, self.loc = ids, loc

    @classmethod
    def from_index(cls, index: Dict) -> "IdTable":
        """From an index whose shard entries list ``utts`` ([cut_id, frames], in shard order)."""
        ids, loc = [], []
        for si, sh in enumerate(index["shards"]):
            for ui, (cid, n) in enumerate(sh["utts"]):
                ids.append(cid.encode("utf-8"))
                loc.append((si, ui, int(n)))
        ids_a = np.array(ids, dtype=bytes) if ids else np.zeros(0, dtype="S1")
        loc_a = np.array(loc, dtype=np.int64).reshape(-1, 3)
        order = np.argsort(ids_a, kind="stable")
        ids_a, loc_a = ids_a[order], loc_a[order]
        dup = np.flatnonzero(ids_a[1:] == ids_a[:-1])
        if len(dup):
            raise ValueError(f"pseudo-label index lists cut {ids_a[dup[0]].decode()} twice")
        return cls(ids_a, loc_a)

    def save(self, out_dir: PathLike) -> None:
        for name, a in ((ID_TABLE, self.ids), (LOC_TABLE, self.loc)):
            with atomic_path(Path(out_dir) / name) as tmp:
                np.save(tmp, a)

    @classmethod
    def open(cls, out_dir: PathLike) -> "IdTable":
        d = Path(out_dir)
        return cls(np.load(d / ID_TABLE, mmap_mode="r"), np.load(d / LOC_TABLE, mmap_mode="r"))

    def __len__(self) -> int:
        return len(self.ids)

    def find(self, cut_id: str) -> Optional[Tuple[int, int, int]]:
        """``(shard, row, frames)`` of ``cut_id`` or None."""
        if not len(self.ids):
            return None
        key = cut_id.encode("utf-8")
        if len(key) > self.ids.dtype.itemsize:
            return None
        i = int(np.searchsorted(self.ids, key))
        if i < len(self.ids) and self.ids[i] == key:
            s, r, n = self.loc[i]
            return int(s), int(r), int(n)
        return None

    def in_shard_order(self) -> np.ndarray:
        """Positions sorted by (shard, row): the order of the shards' contents."""
        loc = np.asarray(self.loc)
        return np.lexsort((loc[:, 1], loc[:, 0]))


def index_head(index: Dict) -> Dict:
    """The index without the shards' per-utterance lists (``num_utts`` instead): what a reader needs
    besides the :class:`IdTable`."""
    head = {k: v for k, v in index.items() if k != "shards"}
    head["shards"] = [{**{k: v for k, v in sh.items() if k != "utts"}, "num_utts": len(sh.get("utts", []))}
                      for sh in index["shards"]]
    return head


def write_compact_index(out_dir: PathLike, index: Dict, index_text: str) -> None:
    """``index.ids.npy``, ``index.loc.npy`` and ``index.head.json`` beside ``index.json`` (whose text is
    ``index_text``, recorded by size and blake2b): a reader opens these without loading every cut id
    (:class:`PseudoLabelReader`), and only while ``index.json`` is the one they were made with."""
    IdTable.from_index(index).save(out_dir)
    head = index_head(index)
    data = index_text.encode("utf-8")
    head["index_json"] = {"bytes": len(data), "checksum": blake2b_bytes(data)}
    with atomic_path(Path(out_dir) / INDEX_HEAD) as tmp:
        tmp.write_text(json.dumps(head, separators=(",", ":")), encoding="utf-8")


def _compact_head(d: Path) -> Optional[Dict]:
    """The head of the compact index of ``d`` if it describes the ``index.json`` there, else None."""
    files = [d / INDEX_HEAD, d / ID_TABLE, d / LOC_TABLE]
    full = d / "index.json"
    if not (full.exists() and all(f.exists() for f in files)):
        return None
    try:
        head = json.loads(files[0].read_text(encoding="utf-8"))
    except ValueError:
        return None
    made_for = head.get("index_json") or {}
    if made_for.get("bytes") != full.stat().st_size or made_for.get("checksum") != file_checksum(full):
        log.info("%s: the compact index is not index.json's (merged again since?): reading index.json", d)
        return None
    return head


class PseudoLabelReader:
    """Iterates the utterances of a labelled shard set for training.

    ``PseudoLabelReader("exp/pseudo", num_senones=S, tree_checksum=tree_checksum("exp/senone/tree"))``

    * refuses (``LabelMismatchError``) a set whose ``num_senones`` or tree checksum differ from the
      trainer's (``None``: not checked);
    * verifies each shard's blake2b the first time it is opened (``verify=False`` skips that) and
      refuses a corrupt one (``ChecksumError`` naming its path);
    * ``for cut_id, ids, probs in reader``: ``ids`` (T, k) int64 (``id_dtype``), ``probs`` (T, k) float32
      renormalised to sum to one per frame; ``reader.get(cut_id)`` gives one utterance.
    """

    def __init__(self, index: Union[PathLike, Dict], num_senones: Optional[int] = None,
                 tree_checksum: Optional[str] = None, verify: bool = True, id_dtype=None,
                 renormalise: bool = True):
        import torch

        self._table: Optional[IdTable] = None
        if isinstance(index, dict):
            self.index, self.root = index, Path(index.get("root", "."))
            where = "pseudo-label index"
        else:
            p = Path(index)
            self.root = p if p.is_dir() else p.parent
            where = str(p / "index.json" if p.is_dir() else p)
            head = _compact_head(self.root) if (p.is_dir() or p.name == "index.json") else None
            if head is not None and head.get("format") == INDEX_FORMAT:
                self.index = head
                self._table = IdTable.open(self.root)
            else:  # an index without the compact files (older merges): its lists, sorted in memory
                self.index = load_index(p)
        check_compatible(self.index, num_senones, tree_checksum, where)
        self.k = int(self.index["k"])
        self.num_senones = int(self.index["num_senones"])
        self.verify = verify
        self.renormalise = renormalise
        self.id_dtype = id_dtype or torch.int64
        self._shards: Dict[int, Shard] = {}
        if self._table is None:
            self._table = IdTable.from_index(self.index)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def num_frames(self) -> int:
        return int(np.asarray(self._table.loc[:, 2]).sum())

    def cut_ids(self) -> List[str]:
        """Every labelled cut id in shard order (a list of all of them: for small sets and tests)."""
        return [self._table.ids[i].decode("utf-8") for i in self._table.in_shard_order()]

    def frames_of(self, cut_id: str) -> Optional[int]:
        """The labelled 30 ms frames of ``cut_id``, None if it has no labels (no shard is read)."""
        hit = self._table.find(cut_id)
        return None if hit is None else hit[2]

    def __contains__(self, cut_id: str) -> bool:
        return self._table.find(cut_id) is not None

    def frames_table(self) -> Dict[str, int]:
        """``{cut_id: frames}`` of every labelled utterance (a dict of all of them: small sets only)."""
        return {self._table.ids[i].decode("utf-8"): int(self._table.loc[i, 2]) for i in range(len(self._table))}

    def shard(self, si: int) -> Shard:
        if si not in self._shards:
            entry = self.index["shards"][si]
            sh = Shard(self.root / entry["name"], entry["checksum"] if self.verify else None)
            if sh.k != self.k or sh.num_senones != self.num_senones:
                raise ShardError(sh.path, f"k={sh.k}, num_senones={sh.num_senones} but the index says "
                                          f"k={self.k}, num_senones={self.num_senones}")
            self._shards[si] = sh
        return self._shards[si]

    def _convert(self, ids: np.ndarray, probs: np.ndarray):
        import torch

        ids_t = torch.from_numpy(ids.astype(np.int64 if self.id_dtype == torch.int64 else np.int32))
        p = renormalised(probs) if self.renormalise else probs.astype(np.float32)
        return ids_t, torch.from_numpy(p)

    def get_raw(self, cut_id: str) -> Tuple[np.ndarray, np.ndarray]:
        """``(ids (T, k) uint16, probs (T, k) float16)`` of one utterance as the shard stores them (copies)."""
        hit = self._table.find(cut_id)
        if hit is None:
            raise KeyError(f"cut {cut_id} has no pseudo-labels in {self.root}")
        _, ids, probs, _ = self.shard(hit[0])[hit[1]]
        return np.array(ids), np.array(probs)

    def get(self, cut_id: str):
        """``(ids, probs)`` of one utterance (KeyError naming the cut if it has no labels)."""
        hit = self._table.find(cut_id)
        if hit is None:
            raise KeyError(f"cut {cut_id} has no pseudo-labels in {self.root}")
        si, ui, _ = hit
        _, ids, probs, _ = self.shard(si)[ui]
        return self._convert(ids, probs)

    def __iter__(self) -> Iterator:
        for si in range(len(self.index["shards"])):
            sh = self.shard(si)
            # convert the whole shard once (vectorised), then hand out views per utterance
            ids_t, probs_t = self._convert(np.asarray(sh.ids), np.asarray(sh.probs))
            for ui, cid in enumerate(sh.cut_ids):
                a, b = int(sh.offsets[ui]), int(sh.offsets[ui + 1])
                yield cid, ids_t[a:b], probs_t[a:b]
