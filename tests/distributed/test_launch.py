import pytest

import dist_workers
from asrkit.distributed.launch import choose_backend, config_hash, file_checksum, init_distributed, shard_items


def test_shard_items_deterministic_disjoint_and_even():
    items = [f"cut{i}" for i in range(10)]
    shards = [shard_items(items, r, 3, shuffle=True, seed=7, epoch=1) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]             # padded to a multiple of the world size
    assert set().union(*shards) == set(items)
    assert shards == [shard_items(items, r, 3, shuffle=True, seed=7, epoch=1) for r in range(3)]
    assert shards != [shard_items(items, r, 3, shuffle=True, seed=7, epoch=2) for r in range(3)]
    dropped = [shard_items(items, r, 3, drop_last=True) for r in range(3)]
    assert dropped == [["cut0", "cut3", "cut6"], ["cut1", "cut4", "cut7"], ["cut2", "cut5", "cut8"]]
    assert shard_items(items) == items                        # world of one
    with pytest.raises(ValueError):
        shard_items(items, 3, 3)


def test_single_process_and_backend(monkeypatch, tmp_path):
    for v in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(v, raising=False)
    info = init_distributed()
    assert (info.rank, info.world_size, info.initialized) == (0, 1, False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        init_distributed()
    assert choose_backend("gloo") == "gloo"
    with pytest.raises(ValueError):
        choose_backend("mpi2")
    import torch
    if not torch.cuda.is_available():
        assert choose_backend("auto") == "gloo"
        with pytest.raises(RuntimeError, match="CUDA"):
            choose_backend("nccl")
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    f = tmp_path / "tree"
    f.write_bytes(b"x")
    assert len(file_checksum(f)) == 16


def test_config_mismatch_names_rank(run_workers):
    res = run_workers(dist_workers.config_worker)
    for r in res:
        assert r["same_ok"]
        assert r["mismatch"] is not None
        assert "rank 1 differs from rank 0 in sync" in r["mismatch"]
        assert "model" not in r["mismatch"].split("in sync")[1].split(";")[0].split("-")[0].replace("model,", "")
