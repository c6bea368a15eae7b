"""Sequential training shards: features and targets of many cuts packed into files read in order.

What a student at scale reads instead of a manifest plus feature archives plus pseudo-label shards:
large files, whole, one after another (as from object storage), never a random access per cut.

A **training shard** (``tshard-00000.bin``) is a sequence of records, one per cut::

    offset 0   b"ASRKTRS1"                        magic (8 bytes)
    offset 8   uint64 little-endian H             length of the JSON header
    offset 16  JSON header, H bytes               {"format", "kind", "num_cuts"}, zero-padded to 16 bytes
    records    per cut: uint64 R (the record's bytes after these 8, a multiple of 16), uint64 J,
               J bytes of JSON {"id", "T", "cut", "arrays": {name: [offset, dtype, shape]}}, zero
               padding to 16 bytes, then the arrays (each 16-byte aligned, offsets from the first one)

The arrays of a ``hard`` (labelled) cut are its features, the stored 10 ms frames as
``asrkit.features.reader.load_frames`` gives them (normalisation and stacking stay the reader's, done at
batch time, so one shard set serves every ``cmvn_mode`` but ``speaker``), and ``senones`` (T,) as stage 6
stored them. The features are ``feats_lilcom`` (uint8: lilcom's bytes at lhotse's tick power, what the
feature archives already hold, 3-4x smaller than float32) where that codec gives the frames back bit
for bit, else ``feats`` (n, D) float32; :func:`stored_feats` gives the frames of either. A ``soft``
(machine-labelled) cut has its features the same way and the pseudo-label shard's raw top-k
``ids`` (T, k) uint16 and ``probs`` (T, k) float16 (renormalised at batch time, as
:class:`asrkit.pseudo.shards.PseudoLabelReader` does). ``cut`` is the manifest line's dict.

Each shard has a **sidecar** (``tshard-00000.json``: the small per-shard index) with its size, its
blake2b (the pseudo-label shards' ``blake2b:<hex>``) and one row per cut ``[id, T, offset, bytes]``
(the record's place in the file): a sampler plans its batches from the sidecars alone and reads a
shard only for the cuts it serves. The set's ``index.json`` (format, kind, k, num_senones, tree
checksum, totals and the shards' names, sizes and checksums) is written last: a set without it is
incomplete. Every file is written under a temporary name and renamed when whole (no half-written
shard survives a crash); a reader refuses a shard whose size or checksum is not its sidecar's, naming it.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import lilcom
import numpy as np

from asrkit.pseudo.shards import ChecksumError, ShardError, blake2b_bytes
from asrkit.utils.atomic import atomic_path

PathLike = Union[str, Path]
MAGIC = b"ASRKTRS1"
SHARD_FORMAT = "asrkit-train-shard-v1"
SET_FORMAT = "asrkit-train-shards-v1"
KINDS = ("hard", "soft")
ALIGN = 16
DEFAULT_MAX_BYTES = 32 << 20  # sequential reads of whole files; what one open shard holds in memory (per stream)


FEATS_CODECS = ("lilcom", "float32")
LILCOM_TICK_POWER = -5  # lhotse's LilcomChunkyWriter default: frames it stored come back bit for bit


def feats_arrays(feats: np.ndarray, codec: str = "lilcom") -> Dict[str, np.ndarray]:
    """The record arrays holding ``feats``: ``{"feats_lilcom": bytes}`` when ``codec`` is lilcom and it
    round-trips ``feats`` exactly (features read from lhotse's lilcom archives do), else ``{"feats": float32}``
    (never a lossy copy: a student reads exactly what the manifest loader would)."""
    if codec not in FEATS_CODECS:
        raise ValueError(f"unknown feature codec {codec!r}: expected one of {FEATS_CODECS}")
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    if codec == "lilcom" and feats.ndim == 2 and feats.size:
        # a copy: lilcom.compress rounds its input in place (lilcom 1.8), which would also make the check
        # below compare the rounded frames with themselves
        blob = lilcom.compress(feats.copy(), tick_power=LILCOM_TICK_POWER)
        if np.array_equal(lilcom.decompress(blob), feats):
            return {"feats_lilcom": np.frombuffer(blob, dtype=np.uint8)}
    return {"feats": feats}


def stored_feats(arrays: Dict[str, np.ndarray]) -> np.ndarray:
    """The float32 frames of a record's arrays, whichever way :func:`feats_arrays` stored them."""
    if "feats_lilcom" in arrays:
        return lilcom.decompress(arrays["feats_lilcom"].tobytes())
    return arrays["feats"]


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def shard_name(i: int) -> str:
    return f"tshard-{i:05d}.bin"


def sidecar_name(i: int) -> str:
    return f"tshard-{i:05d}.json"


def encode_record(cut: Dict, T: int, arrays: Dict[str, np.ndarray]) -> bytes:
    """One cut's record (its 16-byte length prefix included)."""
    meta, off = {}, 0
    blobs = []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        a = a.astype(a.dtype.newbyteorder("<")) if a.dtype.byteorder == ">" else a
        meta[name] = [off, a.dtype.str, list(a.shape)]
        blobs.append((off, a.tobytes()))
        off = _align(off + a.nbytes)
    js = json.dumps({"id": cut["id"], "T": int(T), "cut": cut, "arrays": meta}, separators=(",", ":")).encode()
    head = _align(8 + len(js))  # J, the JSON, padding
    body = bytearray(head + off)
    body[0:8] = struct.pack("<Q", len(js))
    body[8:8 + len(js)] = js
    for o, b in blobs:
        body[head + o:head + o + len(b)] = b
    return struct.pack("<Q", len(body)) + bytes(body)


def decode_record(buf, pos: int, where: str) -> Tuple[Dict, Dict[str, np.ndarray], int]:
    """``(json, arrays, next position)`` of the record at ``pos`` of ``buf``; arrays are copies, so the
    shard's bytes can be freed while a cut waits in a sampler's buffer."""
    if pos + 16 > len(buf):
        raise ShardError(where, f"truncated: a record at byte {pos} has no header")
    (rlen,) = struct.unpack_from("<Q", buf, pos)
    (jlen,) = struct.unpack_from("<Q", buf, pos + 8)
    end = pos + 8 + rlen
    if end > len(buf) or 8 + jlen > rlen:
        raise ShardError(where, f"truncated: the record at byte {pos} ends past the end of the file")
    try:
        js = json.loads(bytes(buf[pos + 16:pos + 16 + jlen]).decode("utf-8"))
    except ValueError as e:
        raise ShardError(where, f"unreadable record at byte {pos}: {e}") from None
    data = pos + 8 + _align(8 + jlen)
    arrays = {}
    for name, (off, dtype, shape) in js["arrays"].items():
        count = int(np.prod(shape))
        start = data + off
        if start + count * np.dtype(dtype).itemsize > end:
            raise ShardError(where, f"truncated: array {name!r} of cut {js.get('id')} ends past its record")
        arrays[name] = np.frombuffer(buf, dtype=dtype, count=count, offset=start).reshape(shape).copy()
    return js, arrays, end


def _header(kind: str, num_cuts: int) -> bytes:
    hb = json.dumps({"format": SHARD_FORMAT, "kind": kind, "num_cuts": num_cuts}, separators=(",", ":")).encode()
    pad = _align(16 + len(hb)) - 16 - len(hb)
    return MAGIC + struct.pack("<Q", len(hb) + pad) + hb + b" " * pad  # JSON tolerates trailing blanks


class TrainShardWriter:
    """Packs records into shards of at most ``max_bytes`` (a record larger than that gets a shard of its
    own); holds one shard's records in memory. ``add(cut_dict, T, arrays)``, then ``close(**meta)``
    writes ``index.json`` (``meta``: k, num_senones, tree_checksum, sources, ...)."""

    def __init__(self, out_dir: PathLike, kind: str, max_bytes: int = DEFAULT_MAX_BYTES):
        if kind not in KINDS:
            raise ValueError(f"unknown shard kind {kind!r}: expected one of {KINDS}")
        self.out_dir, self.kind, self.max_bytes = Path(out_dir), kind, int(max_bytes)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.shards: List[Dict] = []
        self._records: List[bytes] = []
        self._rows: List[list] = []
        self._size = 0
        self.num_cuts = self.num_frames = 0

    def add(self, cut: Dict, T: int, arrays: Dict[str, np.ndarray]) -> None:
        rec = encode_record(cut, T, arrays)
        if self._records and self._size + len(rec) > self.max_bytes:
            self.flush()
        self._rows.append([cut["id"], int(T), self._size, len(rec)])  # offset from the first record
        self._records.append(rec)
        self._size += len(rec)
        self.num_cuts += 1
        self.num_frames += int(T)

    def flush(self) -> None:
        if not self._records:
            return
        i = len(self.shards)
        head = _header(self.kind, len(self._records))
        data = head + b"".join(self._records)
        for row in self._rows:
            row[2] += len(head)
        with atomic_path(self.out_dir / shard_name(i)) as tmp:
            tmp.write_bytes(data)
        entry = {"name": shard_name(i), "bytes": len(data), "checksum": blake2b_bytes(data),
                 "num_cuts": len(self._rows), "num_frames": sum(r[1] for r in self._rows)}
        side = {"format": SHARD_FORMAT + "-index", "kind": self.kind, **entry, "cuts": self._rows}
        with atomic_path(self.out_dir / sidecar_name(i)) as tmp:  # after the shard: a sidecar names a whole one
            tmp.write_text(json.dumps(side, separators=(",", ":")), encoding="utf-8")
        self.shards.append(entry)
        self._records, self._rows, self._size = [], [], 0

    def close(self, **meta) -> Dict:
        self.flush()
        index = {"format": SET_FORMAT, "kind": self.kind, **meta, "num_cuts": self.num_cuts,
                 "num_frames": self.num_frames, "num_shards": len(self.shards), "shards": self.shards}
        with atomic_path(self.out_dir / "index.json") as tmp:
            tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
        return index


class TrainShardSet:
    """A written set: ``index`` (its ``index.json``), ``sidecar(i)``, ``read(i)`` (whole shard, verified),
    ``records(i, rows)`` (some records of shard ``i``), ``__iter__`` (every record in order)."""

    def __init__(self, root: PathLike, verify: bool = True):
        self.root = Path(root)
        p = self.root / "index.json"
        if not p.exists():
            raise FileNotFoundError(f"training shard index not found: {p} (write the shards first; a set without "
                                    f"index.json is incomplete)")
        self.index = json.loads(p.read_text(encoding="utf-8"))
        if self.index.get("format") != SET_FORMAT:
            raise ValueError(f"{p}: not an asrkit training shard set (format {SET_FORMAT})")
        self.kind = self.index["kind"]
        self.verify = verify
        self.index_checksum = blake2b_bytes(p.read_bytes())

    @property
    def num_shards(self) -> int:
        return len(self.index["shards"])

    def __len__(self) -> int:
        return int(self.index["num_cuts"])

    def sidecar(self, i: int) -> Dict:
        entry = self.index["shards"][i]
        p = self.root / sidecar_name(i)
        try:
            side = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ShardError(p, "shard sidecar not found (write the shards again)") from None
        except ValueError as e:
            raise ShardError(p, f"unreadable sidecar: {e}") from None
        if side.get("checksum") != entry["checksum"] or len(side.get("cuts", [])) != entry["num_cuts"]:
            raise ShardError(p, "sidecar does not describe the shard index.json lists (written by another run?)")
        return side

    def read(self, i: int) -> bytes:
        """The bytes of shard ``i`` (one sequential read), size and checksum checked."""
        entry = self.index["shards"][i]
        p = self.root / entry["name"]
        try:
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ShardError(p, "training shard not found (write the shards again)") from None
        if len(data) != entry["bytes"]:
            raise ShardError(p, f"truncated or overwritten: {len(data)} bytes, index.json says {entry['bytes']}")
        if data[:8] != MAGIC:
            raise ShardError(p, "not an asrkit training shard (bad magic)")
        if self.verify:
            actual = blake2b_bytes(data)
            if actual != entry["checksum"]:
                raise ChecksumError(p, f"checksum mismatch: index says {entry['checksum']}, file has {actual}; "
                                       f"the shard is corrupt: write the shards again")
        return data

    def records(self, i: int, rows: Optional[Sequence[int]] = None) -> Iterator[Tuple[Dict, Dict[str, np.ndarray]]]:
        """``(json, arrays)`` of the records of shard ``i`` (``rows``: those positions only, in order), as
        stored (lilcom features as bytes: :func:`stored_feats` decodes them)."""
        data, side = self.read(i), self.sidecar(i)
        where = str(self.root / self.index["shards"][i]["name"])
        for r in (range(len(side["cuts"])) if rows is None else rows):
            cid, _, off, _ = side["cuts"][r]
            js, arrays, _ = decode_record(data, off, where)
            if js["id"] != cid:
                raise ShardError(where, f"record {r} holds cut {js['id']}, the sidecar says {cid}")
            yield js, arrays

    def __iter__(self) -> Iterator[Tuple[Dict, Dict[str, np.ndarray]]]:
        for i in range(self.num_shards):
            yield from self.records(i)
