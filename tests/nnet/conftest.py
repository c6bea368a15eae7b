"""Toy labelled cuts (synthetic fbank + senone targets, stored like stage 6 stores them)."""
from __future__ import annotations

import pytest

NUM_SENONES = 12


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory):
    from asrkit.nnet.toydata import make_toy_cuts, toy_cmvn

    d = tmp_path_factory.mktemp("nnet_toy")
    # lengths cover n % 3 == 0, 1, 2
    cuts = make_toy_cuts(d, num_cuts=6, num_senones=NUM_SENONES, lengths=[90, 115, 131, 61, 100, 152], seed=1)
    toy_cmvn(cuts).save(d / "cmvn.npz")
    return d


@pytest.fixture
def toy_cuts(toy_dir):
    from lhotse import CutSet

    return CutSet.from_file(toy_dir / "cuts.jsonl.gz").to_eager()


@pytest.fixture
def toy_cmvn_path(toy_dir):
    return toy_dir / "cmvn.npz"


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core box they lose a lot to contention."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
