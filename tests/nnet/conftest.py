"""Toy labelled cuts (synthetic fbank + senone targets, stored like stage 6 stores them)."""
from __future__ import annotations

import pytest

NUM_SENONES = 12


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory):
    from asrkit.testing.cuts import make_toy_cmvn, write_toy_cuts

    d = tmp_path_factory.mktemp("nnet_toy")
    # lengths cover n % 3 == 0, 1, 2
    cuts = write_toy_cuts(d, num_cuts=6, num_senones=NUM_SENONES, lengths=[90, 115, 131, 61, 100, 152], seed=1)
    make_toy_cmvn(cuts).save(d / "cmvn.npz")
    return d


@pytest.fixture
def toy_cuts(toy_dir):
    from lhotse import CutSet

    return CutSet.from_file(toy_dir / "cuts.jsonl.gz").to_eager()


@pytest.fixture
def toy_cmvn_path(toy_dir):
    return toy_dir / "cmvn.npz"
