"""Duration-bucketing batch sampler over training segments, deterministic per (seed, epoch), resumable.

Each epoch: segments are shuffled, grouped into ``num_buckets`` buckets of similar length, each bucket
is cut into batches whose padded size (``rows x longest segment``) stays within ``max_frames``, and the
batches are shuffled. The whole order follows from ``(seed, epoch)`` alone, so a resumed run skips the
first ``start_batch`` batches of its epoch and sees exactly the batches an uninterrupted run would have.
(lhotse's DynamicBucketingSampler works on cuts and buffers; this one works on chunk segments, whose
lengths are known up front, and needs no state beyond the two integers.)
"""
from __future__ import annotations

from typing import Iterator, List, Sequence

import numpy as np


class BucketingBatchSampler:
    def __init__(self, lengths: Sequence[int], max_frames: int, num_buckets: int = 10, shuffle: bool = True,
                 seed: int = 0, max_batch_size: int = 0):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if len(self.lengths) == 0:
            raise ValueError("no segments to sample from")
        if max_frames <= 0:
            raise ValueError(f"max_frames must be positive, got {max_frames}")
        self.max_frames = int(max_frames)
        self.num_buckets = max(1, int(num_buckets))
        self.shuffle = shuffle
        self.seed = int(seed)
        self.max_batch_size = int(max_batch_size)
        self.epoch = 0
        self.start_batch = 0
        self._cache = None

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = int(epoch)
        self.start_batch = int(start_batch)

    def batches(self, epoch: int = None) -> List[List[int]]:
        """All batches (lists of segment indices) of ``epoch`` in order."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        n = len(self.lengths)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(n)
        else:
            rng, order = None, np.arange(n)
        # stable sort by length keeps the shuffled order inside equal lengths
        by_len = order[np.argsort(self.lengths[order], kind="stable")]
        out: List[List[int]] = []
        for bucket in np.array_split(by_len, min(self.num_buckets, n)):
            if self.shuffle:
                bucket = bucket[rng.permutation(len(bucket))]
            cur: List[int] = []
            longest = 0
            for i in bucket.tolist():
                L = int(self.lengths[i])
                new_longest = max(longest, L)
                full = self.max_batch_size and len(cur) >= self.max_batch_size
                if cur and (new_longest * (len(cur) + 1) > self.max_frames or full):
                    out.append(cur)
                    cur, new_longest = [], L
                cur.append(i)
                longest = new_longest
            if cur:
                out.append(cur)
        if self.shuffle:
            out = [out[i] for i in rng.permutation(len(out))]
        self._cache = (epoch, out)
        return out

    def num_batches(self, epoch: int = None) -> int:
        return len(self.batches(epoch))

    def __len__(self) -> int:
        return max(0, self.num_batches() - self.start_batch)

    def __iter__(self) -> Iterator[List[int]]:
        yield from self.batches()[self.start_batch:]


def shard_positions(n: int, rank: int, world_size: int, drop_last: bool = False) -> List[int]:
    """Positions of an epoch's ``n`` batches that rank ``rank`` of ``world_size`` trains on.

    Every rank sees the same seeded order; rank r takes positions r, r+N, r+2N, ... After padding the
    list by repeating its head (or, with ``drop_last``, truncating it) to a multiple of N, so that all
    ranks take the same number of optimiser steps and their collectives stay in step. World 1: all of
    ``range(n)``.
    """
    from asrkit.distributed.launch import shard_items

    return list(shard_items(range(n), rank=rank, world_size=world_size, drop_last=drop_last))
