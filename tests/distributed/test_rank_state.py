"""RankState in a world of one (the cross-rank paths run under torchrun: test_train_torchrun.py)."""
import argparse
import json

import pytest
import torch

from asrkit.distributed.cli import add_dist_args, sync_config_from_args
from asrkit.distributed.rank_state import RankState, SyncDivergedError, comm_json_text, param_hash


def test_world_of_one_exchanges_are_local():
    r = RankState()
    assert r.is_main and r.broadcast({"a": 1}) == {"a": 1} and r.gather(5) == [5]
    assert r.sum_over_ranks([1.5, 2, 3]) == [1.5, 2, 3]
    m = torch.nn.Linear(3, 2)
    assert r.check_sync(m, "ddp", "step", 1) == [param_hash(m)] and r.sync_checks == 1


def test_param_hash_sees_one_changed_element():
    m = torch.nn.Linear(3, 2)
    h = param_hash(m)
    with torch.no_grad():
        m.weight[0, 0] += 1e-6
    assert param_hash(m) != h


def test_check_sync_names_the_odd_rank():
    class TwoRanks(RankState):
        def gather(self, obj):
            return [obj, "something else"]

    with pytest.raises(SyncDivergedError, match=r"rank\(s\) \[1\] differ from rank 0's after step 7"):
        TwoRanks(0, 2).check_sync(torch.nn.Linear(2, 2), "gtc", "step", 7)


def test_comm_json_writes_infinity_as_null():
    out = json.loads(comm_json_text({"compression_ratio": float("inf"), "steps": 3}))
    assert out == {"compression_ratio": None, "steps": 3}


def test_dist_args_default_to_one_process():
    p = argparse.ArgumentParser()
    add_dist_args(p)
    a = p.parse_args([])
    assert a.sync == "none" and sync_config_from_args(a) is None and a.check_sync_every == 0
    b = p.parse_args(["--sync", "bmuf", "--sync-period", "7", "--reset-optimizer", "no"])
    cfg = sync_config_from_args(b)
    assert cfg.mode == "bmuf" and cfg.sync_period == 7 and cfg.reset_optimizer is False
