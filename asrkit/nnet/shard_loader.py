"""The student's loader at scale (``TrainConfig.loader: shards``): training shards read in order.

* :func:`write_training_shards` packs a training manifest (labelled cuts with stage-6 ``senones``, or
  machine-labelled cuts with their pseudo-labels) into the sequential shards of
  :mod:`asrkit.pseudo.trainshards`, every cut checked as the manifest loader checks it
  (``check_cut_dict``); machine-labelled cuts without pseudo-labels are left out and counted.
  ``python -m asrkit.bin.write_train_shards`` is its command.
* :class:`ShardStream` gives the batches of one kind, epoch after epoch: each epoch reads the shards in
  an order drawn from ``(seed, epoch)``, one whole shard at a time (checksum verified), cuts them into
  the manifest loader's chunks and batches them with a :class:`DynamicBucketer` (a bounded shuffle
  buffer, duration buckets, ``max_frames``). Memory: the buffer's cuts (their features as stored, lilcom
  bytes for the features of lhotse's archives) and one shard, whatever the number of cuts. The order
  is **not** the manifest loader's (which sorts a whole epoch up front), so a student trained this way
  sees other batches than the default one: the default loader is unchanged.
* **Exact resume**: a stream's state is ``(epoch, batches served)`` (saved in the checkpoint by
  :class:`asrkit.nnet.ssl.SslTrainer`); :meth:`ShardStream.batches_from` replays the first batches of
  the epoch on the sidecars' lengths alone (no shard read), then reads the shards of the cuts waiting in
  the buffer and goes on: the same batches as an uninterrupted run. :meth:`ShardStream.num_batches`
  counts an epoch the same way (the schedule needs each epoch's length up front): one pass over the
  sidecars, O(cuts) time, no memory per cut.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from asrkit.data.lazy import iter_manifest_lines
from asrkit.features.reader import load_frames
from asrkit.nnet.dataset import (TARGETS_FIELD, LabelFrames, Segment, _load_field, check_cut_dict, chunk_bounds,
                                 collate_rows, hard_targets, soft_targets)
from asrkit.nnet.stream_sampler import DynamicBucketer, estimate_boundaries
from asrkit.pseudo.shards import ShardError, renormalised
from asrkit.pseudo.trainshards import (DEFAULT_MAX_BYTES, TrainShardSet, TrainShardWriter, decode_record, feats_arrays,
                                       stored_feats)

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
PROGRESS_EVERY = 10000  # cuts between the writer's progress lines


def write_training_shards(manifests: Sequence[PathLike], out_dir: PathLike, kind: str = "hard", labels=None,
                          num_senones: Optional[int] = None, max_bytes: int = DEFAULT_MAX_BYTES,
                          frames: Optional[Callable] = None, feats_codec: str = "lilcom") -> Dict:
    """Pack the cuts of ``manifests`` (in order) into training shards in ``out_dir``; returns index.json.

    ``kind="hard"``: labelled cuts, targets their ``senones`` field; ``"soft"``: machine-labelled cuts,
    targets their pseudo-labels in ``labels`` (a :class:`PseudoLabelReader`; cuts it lacks are left out,
    counted in the index as ``left_out``). ``frames(cut)``: the cut's stored 10 ms features (default
    ``load_frames``; a caller that already holds them passes its own). ``feats_codec``: ``lilcom`` stores
    the frames as lilcom bytes where that is lossless (counted in the index as ``feats_lilcom``; the others
    as float32, ``feats_float32``), ``float32`` always as float32."""
    from lhotse.serialization import deserialize_item

    if kind == "soft" and labels is None:
        raise ValueError("machine-labelled shards need the pseudo-labels (a PseudoLabelReader)")
    have = LabelFrames(labels) if kind == "soft" else None
    writer = TrainShardWriter(out_dir, kind, max_bytes)
    left_out, stored = 0, {"feats_lilcom": 0, "feats_float32": 0}
    seen = set()  # ids of this set only: O(cuts) but bytes, as CutStore's duplicate check
    for src in manifests:
        for line in iter_manifest_lines(src):
            d = json.loads(line)
            if have is not None and d["id"] not in have:
                left_out += 1
                continue
            if d["id"] in seen:
                raise ValueError(f"cut {d['id']} appears twice in {', '.join(map(str, manifests))}")
            seen.add(d["id"])
            T = check_cut_dict(d, kind, have)
            cut = deserialize_item(json.loads(line))  # lhotse turns the dict it is given into objects
            arrays = feats_arrays((frames or load_frames)(cut), feats_codec)
            stored["feats_lilcom" if "feats_lilcom" in arrays else "feats_float32"] += 1
            if kind == "hard":
                arrays["senones"] = _load_field(cut, TARGETS_FIELD)  # as stored (int16), checked at batch time
                hard_targets(cut.id, arrays["senones"], T, num_senones)
            else:
                arrays["ids"], arrays["probs"] = labels.get_raw(cut.id)
            writer.add(d, T, arrays)
            if writer.num_cuts % PROGRESS_EVERY == 0:  # hours of work at 10^6 cuts: say where it is
                log.info("%s: %d cuts in %d shards so far (%d lilcom, %d float32)", out_dir, writer.num_cuts,
                         len(writer.shards), stored["feats_lilcom"], stored["feats_float32"])
    meta = {"sources": [str(s) for s in manifests], "left_out": left_out, "num_senones": num_senones, **stored}
    if labels is not None:
        meta.update(num_senones=labels.num_senones, k=labels.k, tree_checksum=labels.index.get("tree_checksum"))
    if not writer.num_cuts:
        raise ValueError(f"no cut to write from {', '.join(map(str, manifests))}"
                         + (f" ({left_out} have no pseudo-labels)" if left_out else ""))
    index = writer.close(**meta)
    log.info("wrote %d %s cuts (%d frames) in %d training shards to %s%s", index["num_cuts"], kind,
             index["num_frames"], index["num_shards"], out_dir,
             f"; {left_out} without pseudo-labels left out" if left_out else "")
    return index


class _Cut:
    """A cut of the stream: where its record is, its length, and its data once read."""
    __slots__ = ("shard", "row", "id", "T", "offset", "data")

    def __init__(self, shard: int, row: int, cid: str, T: int, offset: int):
        self.shard, self.row, self.id, self.T, self.offset, self.data = shard, row, cid, T, offset, None


class _Item:
    """One chunk of a cut: what the bucketer sorts (``length``: input frames)."""
    __slots__ = ("cut", "seg", "length")

    def __init__(self, cut: _Cut, seg: Segment):
        self.cut, self.seg, self.length = cut, seg, seg.ctx_end - seg.ctx_start


class ShardStream:
    """Batches of one training shard set (module doc). ``batches_from(epoch, start)`` yields collated
    batch dicts from batch ``start`` of ``epoch`` on, through the following epochs; ``num_batches(e)``."""

    def __init__(self, root: PathLike, reader, chunk_size: int = 0, left_context: int = 0, right_context: int = 0,
                 min_chunk: int = 1, max_frames: int = 10000, seed: int = 0, buffer_size: int = 2000,
                 num_buckets: int = 10, max_batch_size: int = 0, num_senones: Optional[int] = None,
                 verify: bool = True, kind: Optional[str] = None):
        self.set = TrainShardSet(root, verify)
        if kind is not None and self.set.kind != kind:
            raise ValueError(f"{root}: {self.set.kind} shards, the {kind} stream needs {kind} ones")
        if not hasattr(reader, "from_frames"):
            raise ValueError(f"the shard loader needs a reader with from_frames (a FeatureReader), "
                             f"got {type(reader).__name__}")
        if getattr(reader, "norm", "global") == "speaker":
            raise ValueError("cmvn_mode 'speaker' is not available with the shard loader (its statistics need a "
                             "pass over the manifests): use global or utterance")
        self.kind, self.reader, self.num_senones = self.set.kind, reader, num_senones
        self.chunking = (chunk_size, left_context, right_context, min_chunk)
        self.max_frames, self.seed, self.buffer_size = int(max_frames), int(seed), int(buffer_size)
        self.max_batch_size = int(max_batch_size)
        self.boundaries = estimate_boundaries(self._sample_lengths(max(buffer_size, 1000)), num_buckets)
        self._counts: Dict[int, int] = {}
        self.bucketer: Optional[DynamicBucketer] = None

    # ------------------------------------------------------------------ the stream of chunks
    def _segments(self, T: int) -> List[Segment]:
        chunk_size, left, right, min_chunk = self.chunking
        return [Segment(0, s, e, max(0, s - left), min(T, e + right))
                for s, e in chunk_bounds(T, chunk_size, min_chunk)]

    def _sample_lengths(self, n: int) -> List[int]:
        """Input lengths of the first ``n`` chunks in stored order: the sample the buckets are cut from
        (fixed for the set, so every epoch and a resumed run bucket alike)."""
        out: List[int] = []
        for si in range(self.set.num_shards):
            for _, T, _, _ in self.set.sidecar(si)["cuts"]:
                out += [sg.ctx_end - sg.ctx_start for sg in self._segments(int(T))]
            if len(out) >= n:
                break
        return out[:n]

    def _shard_order(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(self.set.num_shards)

    def _items(self, order, ctx: Dict) -> Iterator[_Item]:
        """Chunks of every cut, shards in ``order``; a cut's data is read as it enters the stream while
        ``ctx["loading"]`` (off while an epoch's first batches are only replayed)."""
        for si in order.tolist():
            side = self.set.sidecar(si)
            for row, (cid, T, off, _) in enumerate(side["cuts"]):
                cut = _Cut(si, row, cid, int(T), int(off))
                for seg in self._segments(cut.T):
                    if ctx["loading"] and cut.data is None:
                        self._read(cut, ctx)
                    yield _Item(cut, seg)
            if ctx["open"] is not None and ctx["open"][0] == si:
                ctx["open"] = None  # done with this shard: its bytes go

    def _read(self, cut: _Cut, ctx: Dict) -> None:
        """Fill ``cut.data`` from its shard; ``ctx["open"]``: ``(shard, bytes)`` of the shard being read
        (one per epoch pass, so a count running beside a pass shares nothing with it)."""
        if ctx["open"] is None or ctx["open"][0] != cut.shard:
            ctx["open"] = (cut.shard, self.set.read(cut.shard))  # the whole shard, one sequential read
        where = str(self.set.root / self.set.index["shards"][cut.shard]["name"])
        js, arrays, _ = decode_record(ctx["open"][1], cut.offset, where)
        if js["id"] != cut.id or int(js["T"]) != cut.T:
            raise ShardError(where, f"the record at byte {cut.offset} holds cut {js['id']}, the sidecar says {cut.id}")
        # as stored (lilcom bytes: a waiting cut costs what it does on disk, decoded when batched), not the
        # manifest line: a dict of it per waiting cut would cost more than its text
        cut.data = arrays

    # ------------------------------------------------------------------ batches
    def _epoch(self, epoch: int, start: int = 0, load: bool = True) -> Iterator[list]:
        """Lists of items of ``epoch`` from batch ``start``: the first ``start`` replayed on lengths only."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        ctx = {"loading": load and start == 0, "open": None}
        b = DynamicBucketer(self.max_frames, self.boundaries, self.buffer_size, self.max_batch_size)
        if load:
            self.bucketer = b  # the last data pass's, for its max_buffered
        for i, batch in enumerate(b.batches(self._items(self._shard_order(rng), ctx), rng)):
            if i >= start:
                yield batch
            elif i == start - 1 and load:  # replayed up to here: read what waits, shard by shard, and go on
                ctx["loading"] = True
                for item in sorted(b.waiting(), key=lambda it: (it.cut.shard, it.cut.row)):
                    if item.cut.data is None:
                        self._read(item.cut, ctx)

    def num_batches(self, epoch: int) -> int:
        """Batches of ``epoch`` (counted on the sidecars' lengths; cached)."""
        epoch = int(epoch)
        if epoch not in self._counts:
            self._counts[epoch] = sum(1 for _ in self._epoch(epoch, load=False))
        return self._counts[epoch]

    def collate(self, items: Sequence[_Item]) -> Dict:
        loaded: Dict[int, tuple] = {}
        rows = []
        for it in items:
            c = it.cut
            if id(c) not in loaded:
                arrays = c.data
                info = SimpleNamespace(id=c.id, supervisions=[])  # what normalisation asks of a cut
                feats = self.reader.from_frames(info, stored_feats(arrays))
                if self.kind == "hard":
                    tg = (hard_targets(c.id, arrays["senones"], len(feats), self.num_senones),)
                else:
                    tg = soft_targets(c.id, arrays["ids"].astype(np.int64), renormalised(arrays["probs"]), len(feats))
                loaded[id(c)] = (feats, tg)
            rows.append((c.id, it.seg, *loaded[id(c)]))
        return collate_rows(self.kind, rows)

    def batches_from(self, epoch: int, start: int = 0) -> Iterator[Dict]:
        """Collated batches from batch ``start`` of ``epoch`` on, then every following epoch's."""
        e = int(epoch)
        while True:
            for items in self._epoch(e, start):
                yield self.collate(items)
            e, start = e + 1, 0

    def state(self, epoch: int, served: int) -> Dict:
        """What a checkpoint keeps of this stream at batch ``served`` of ``epoch`` (enough to replay)."""
        return {"epoch": int(epoch), "batches_served": int(served), "index_checksum": self.set.index_checksum,
                "seed": self.seed, "buffer_size": self.buffer_size, "max_frames": self.max_frames,
                "boundaries": list(self.boundaries)}
