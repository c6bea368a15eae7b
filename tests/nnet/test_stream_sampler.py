"""DynamicBucketer: every item once, a bounded buffer, max_frames respected, deterministic per seed."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from asrkit.nnet.stream_sampler import DynamicBucketer, estimate_boundaries


def _items(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return [SimpleNamespace(i=i, length=int(x)) for i, x in enumerate(rng.integers(1, 400, n))]


@pytest.mark.parametrize("buffer_size,max_batch_size", [(1, 0), (50, 0), (500, 0), (500, 7), (10000, 0)])
def test_each_item_once_bounded_buffer_and_max_frames(buffer_size, max_batch_size):
    items = _items()
    b = DynamicBucketer(2000, estimate_boundaries([it.length for it in items[:500]], 8), buffer_size,
                        max_batch_size)
    batches = list(b.batches(iter(items), np.random.default_rng(1)))
    served = sorted(it.i for batch in batches for it in batch)
    assert served == list(range(len(items)))
    assert b.max_buffered <= buffer_size and b.buffered == 0
    for batch in batches:
        assert batch
        if len(batch) > 1:
            assert len(batch) * max(it.length for it in batch) <= 2000
        if max_batch_size:
            assert len(batch) <= max_batch_size
    again = list(DynamicBucketer(2000, b.boundaries, buffer_size, max_batch_size).batches(
        iter(items), np.random.default_rng(1)))
    assert [[it.i for it in x] for x in again] == [[it.i for it in x] for x in batches]
    if buffer_size >= 50:  # the buffer buckets: a batch's lengths are close
        spread = np.mean([max(it.length for it in x) - min(it.length for it in x) for x in batches])
        assert spread < 200


def test_one_item_longer_than_max_frames_is_a_batch_alone():
    items = [SimpleNamespace(i=0, length=5000), SimpleNamespace(i=1, length=10)]
    batches = list(DynamicBucketer(100, [], 10).batches(iter(items), np.random.default_rng(0)))
    assert sorted(len(x) for x in batches) == [1, 1]


def test_boundaries():
    assert estimate_boundaries([220] * 100, 10) == [220]
    assert estimate_boundaries([], 10) == [] and estimate_boundaries([1, 2], 1) == []
    assert estimate_boundaries(list(range(100)), 4) == [25, 50, 75]
