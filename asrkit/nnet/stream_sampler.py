"""Duration bucketing over a stream: batches from a bounded buffer, never the whole set's lengths.

:class:`BucketingBatchSampler` (``asrkit.nnet.sampler``) shuffles and sorts every segment of an epoch
up front: memory linear in the corpus. :class:`DynamicBucketer` is the streaming counterpart (lhotse's
``DynamicBucketingSampler`` is the field's answer; this one is the same idea on the project's chunk
segments): items (anything with a ``length``, e.g. a chunk's input frames) are pulled from an iterator
into buckets by length; whenever ``buffer_size`` items wait, one batch leaves a randomly chosen bucket
that holds a full batch (or the fullest bucket, when none does); at the end of the stream the buckets
are drained. A batch is items of one bucket in a random order, as many as fit ``max_frames`` padded
frames (rows x longest; one longer item makes a batch alone) and ``max_batch_size`` rows.

Every random draw comes from the generator it is given, and none depends on anything but the lengths,
so replaying the same stream of lengths with the same seed gives the same batches: a resumed epoch
replays its first batches on the lengths alone (``asrkit.nnet.shard_loader``) instead of saving the
buffer. Memory: at most ``buffer_size`` items wait (``max_buffered`` records the peak, for tests).
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Iterable, Iterator, List, Sequence

import numpy as np


def estimate_boundaries(lengths: Sequence[int], num_buckets: int) -> List[int]:
    """Bucket boundaries: the ``num_buckets``-quantiles of a sample of lengths (duplicates dropped, so a
    set of equal chunks gets few buckets). Bucket ``b`` holds lengths in ``[bounds[b-1], bounds[b])``."""
    if not len(lengths) or num_buckets <= 1:
        return []
    qs = np.quantile(np.asarray(lengths, dtype=np.float64), np.linspace(0, 1, num_buckets + 1)[1:-1])
    return sorted({int(np.ceil(q)) for q in qs})


class DynamicBucketer:
    def __init__(self, max_frames: int, boundaries: Sequence[int] = (), buffer_size: int = 2000,
                 max_batch_size: int = 0):
        if max_frames <= 0:
            raise ValueError(f"max_frames must be positive, got {max_frames}")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, got {buffer_size}")
        self.max_frames = int(max_frames)
        self.boundaries = [int(b) for b in boundaries]
        self.buffer_size = int(buffer_size)
        self.max_batch_size = int(max_batch_size)
        self.buckets: List[list] = []
        self.buffered = 0
        self.max_buffered = 0

    def waiting(self) -> Iterator:
        """The items in the buffer now (e.g. to read their data after a replay)."""
        for b in self.buckets:
            yield from b

    def _full(self, bucket: list) -> bool:
        """Whether ``bucket`` holds at least one whole batch."""
        if self.max_batch_size and len(bucket) >= self.max_batch_size:
            return True
        return len(bucket) * max(it.length for it in bucket) > self.max_frames

    def _take(self, b: int, rng: np.random.Generator) -> list:
        bucket = self.buckets[b]
        taken, longest = [], 0
        for j in rng.permutation(len(bucket)).tolist():
            L = bucket[j].length
            new_longest = max(longest, L)
            if taken and (new_longest * (len(taken) + 1) > self.max_frames
                          or (self.max_batch_size and len(taken) >= self.max_batch_size)):
                break
            taken.append(j)
            longest = new_longest
        gone = set(taken)
        self.buckets[b] = [it for j, it in enumerate(bucket) if j not in gone]
        self.buffered -= len(taken)
        return [bucket[j] for j in taken]

    def batches(self, items: Iterable, rng: np.random.Generator) -> Iterator[list]:
        """Batches (lists of items) of one pass over ``items``; every item in exactly one batch."""
        self.buckets = [[] for _ in range(len(self.boundaries) + 1)]
        self.buffered = self.max_buffered = 0
        for it in items:
            self.buckets[bisect_right(self.boundaries, it.length)].append(it)
            self.buffered += 1
            self.max_buffered = max(self.max_buffered, self.buffered)
            while self.buffered >= self.buffer_size:
                ready = [b for b, bucket in enumerate(self.buckets) if bucket and self._full(bucket)]
                if ready:
                    b = ready[int(rng.integers(len(ready)))]
                else:  # a buffer too small for a whole batch in any bucket: the fullest one goes
                    b = max(range(len(self.buckets)), key=lambda i: len(self.buckets[i]))
                yield self._take(b, rng)
        while self.buffered:
            left = [b for b, bucket in enumerate(self.buckets) if bucket]
            yield self._take(left[int(rng.integers(len(left)))], rng)
