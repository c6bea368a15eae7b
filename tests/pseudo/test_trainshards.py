"""Training shards (asrkit.pseudo.trainshards): exact round trip, bounded shards, whole files only, and a
clear refusal naming the file for a corrupt, truncated or missing shard."""
from __future__ import annotations

import json

import numpy as np
import pytest

from asrkit.pseudo.shards import ChecksumError, ShardError
from asrkit.pseudo.trainshards import TrainShardSet, TrainShardWriter, shard_name, sidecar_name


def _cuts(n=7, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        T = int(rng.integers(5, 40))
        arrays = {"feats": rng.standard_normal((3 * T - int(rng.integers(0, 3)), 8)).astype(np.float32),
                  "ids": rng.integers(0, 60000, (T, 4)).astype(np.uint16),
                  "probs": rng.random((T, 4)).astype(np.float16)}
        out.append(({"id": f"c{i}", "duration": 0.03 * T, "custom": {"note": "é"}}, T, arrays))
    return out


def _write(d, cuts, max_bytes=6000):
    w = TrainShardWriter(d, "soft", max_bytes=max_bytes)
    for cut, T, arrays in cuts:
        w.add(cut, T, arrays)
    return w.close(k=4, num_senones=60001, tree_checksum="t")


def test_round_trip_is_exact_over_several_bounded_shards(tmp_path):
    cuts = _cuts()
    index = _write(tmp_path, cuts)
    assert index["num_shards"] > 2 and index["num_cuts"] == len(cuts)
    assert all(sh["bytes"] <= 6000 for sh in index["shards"])  # no record here exceeds the bound alone
    got = list(TrainShardSet(tmp_path))
    assert [js["id"] for js, _ in got] == [c["id"] for c, _, _ in cuts]
    for (js, arrays), (cut, T, want) in zip(got, cuts):
        assert js["cut"] == cut and js["T"] == T
        for name, a in want.items():
            assert arrays[name].dtype == a.dtype and np.array_equal(arrays[name], a), name
    s = TrainShardSet(tmp_path)
    side = s.sidecar(1)
    assert [r[0] for r in side["cuts"]] == [js["id"] for js, _ in s.records(1)]
    last = len(side["cuts"]) - 1
    assert [js["id"] for js, _ in s.records(1, [last])] == [side["cuts"][last][0]]
    # only whole files: no temporary name is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["index.json"] + [shard_name(i) for i in range(index["num_shards"])]
        + [sidecar_name(i) for i in range(index["num_shards"])])


def test_a_record_larger_than_the_bound_gets_a_shard_of_its_own(tmp_path):
    index = _write(tmp_path, _cuts(3), max_bytes=10)
    assert index["num_shards"] == 3 and [sh["num_cuts"] for sh in index["shards"]] == [1, 1, 1]


def test_corrupt_truncated_or_missing_shards_are_refused_by_name(tmp_path):
    _write(tmp_path, _cuts())
    p = tmp_path / shard_name(1)
    data = bytearray(p.read_bytes())
    data[-3] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=f"{p}.*checksum mismatch"):
        list(TrainShardSet(tmp_path))
    p.write_bytes(bytes(data[:len(data) // 2]))
    with pytest.raises(ShardError, match=f"{p}: truncated"):
        TrainShardSet(tmp_path).read(1)
    with pytest.raises(ShardError, match=f"{p}: truncated"):  # unverified too
        list(TrainShardSet(tmp_path, verify=False).records(1))
    p.unlink()
    with pytest.raises(ShardError, match=f"{p}: training shard not found"):
        TrainShardSet(tmp_path).read(1)
    side = tmp_path / sidecar_name(0)
    side.write_text(json.dumps({**json.loads(side.read_text()), "checksum": "blake2b:00"}))
    with pytest.raises(ShardError, match=str(side)):
        TrainShardSet(tmp_path).sidecar(0)
    (tmp_path / "index.json").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete"):
        TrainShardSet(tmp_path)


def test_a_write_that_dies_midway_leaves_no_shard(tmp_path, monkeypatch):
    from pathlib import Path

    real = Path.write_bytes

    def dying(self, data):  # half the bytes reach the disk, then the process "dies"
        real(self, data[:len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", dying)
    with pytest.raises(OSError, match="disk full"):
        _write(tmp_path, _cuts())
    assert list(tmp_path.iterdir()) == []  # neither a half shard, nor a sidecar, nor index.json


def test_feature_codecs_store_the_frames_bit_for_bit():
    import lilcom

    from asrkit.pseudo.trainshards import LILCOM_TICK_POWER, feats_arrays, stored_feats

    rng = np.random.default_rng(0)
    raw = rng.standard_normal((50, 8)).astype(np.float32) * 3
    # frames as lhotse's archives hold them
    on_grid = lilcom.decompress(lilcom.compress(raw.copy(), tick_power=LILCOM_TICK_POWER))
    a = feats_arrays(on_grid)
    assert list(a) == ["feats_lilcom"] and a["feats_lilcom"].dtype == np.uint8 and a["feats_lilcom"].nbytes < raw.nbytes
    assert np.array_equal(stored_feats(a), on_grid) and stored_feats(a).dtype == np.float32
    # frames lilcom would change (not from its archives) are kept as float32, never a lossy copy
    kept = raw.copy()
    b = feats_arrays(raw)
    assert np.array_equal(raw, kept)  # the caller's frames untouched (lilcom.compress rounds in place)
    assert list(b) == ["feats"] and stored_feats(b) is b["feats"] and np.array_equal(b["feats"], raw)
    assert list(feats_arrays(on_grid, "float32")) == ["feats"]
    assert list(feats_arrays(np.zeros((0, 8), np.float32))) == ["feats"]
    with pytest.raises(ValueError, match="unknown feature codec 'gzip'"):
        feats_arrays(raw, "gzip")
    # through a shard and back
    from asrkit.pseudo.trainshards import decode_record, encode_record

    rec = encode_record({"id": "u1"}, 50, {**a, "senones": np.arange(50, dtype=np.int16)})
    js, arrays, end = decode_record(rec, 0, "mem")
    assert end == len(rec) and np.array_equal(stored_feats(arrays), on_grid)
