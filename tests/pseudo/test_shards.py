import json

import numpy as np
import pytest
import torch

from asrkit.pseudo.label import label_cuts, merge_indices, topk_posteriors
from asrkit.pseudo.shards import (ChecksumError, LabelMismatchError, PseudoLabelReader, Shard, ShardError,
                                  file_checksum, tree_checksum, write_shard)


def test_topk_round_trip_exact_ids_float16_probs_mass(tmp_path):
    torch.manual_seed(1)
    S, k = 300, 20
    logits = [torch.randn(T, S) * 3 for T in (17, 1, 40)]
    ids, probs, mass = [], [], []
    for z in logits:
        i, p, m, ok = topk_posteriors(z, k)
        assert ok.all()
        ids.append(i.numpy().astype(np.uint16)), probs.append(p.numpy().astype(np.float16))
        mass.append(m.numpy().astype(np.float16))
    checksum, nbytes = write_shard(tmp_path / "s.bin", ["a", "b", "c"], ids, probs, mass, k, S)
    assert checksum == file_checksum(tmp_path / "s.bin") and nbytes == (tmp_path / "s.bin").stat().st_size
    sh = Shard(tmp_path / "s.bin", checksum)
    assert len(sh) == 3 and sh.num_frames == 58 and sh.k == k and sh.num_senones == S
    for (cid, i, p, m), z, name in zip(sh, logits, "abc"):
        full = torch.softmax(z, -1)
        ref_p, ref_i = full.topk(k, -1)
        assert cid == name
        np.testing.assert_array_equal(i.astype(np.int64), ref_i.numpy())  # ids exact
        # float16 rounding: relative error <= 2^-11 (normal range), absolute 2^-24 below it
        np.testing.assert_allclose(p.astype(np.float32), ref_p.numpy(), rtol=2 ** -11, atol=2 ** -24)
        np.testing.assert_allclose(m.astype(np.float32), ref_p.sum(-1).numpy(), rtol=2 ** -11)
        assert (m.astype(np.float32) <= 1.0 + 1e-3).all()
    # bytes per frame: 4k + 2 plus a small header
    assert nbytes < 58 * (4 * k + 2) + 1024


def test_empty_shard_round_trip(tmp_path):
    checksum, _ = write_shard(tmp_path / "e.bin", [], [], [], [], 5, 10)
    sh = Shard(tmp_path / "e.bin", checksum)
    assert len(sh) == 0 and sh.num_frames == 0


def _label(tmp_path, teacher, data, **kw):
    cuts, feats = data
    label_cuts(teacher, cuts, lambda c: feats[c.id], tmp_path, shard_size=5, k=8, **kw)
    return merge_indices(tmp_path)


def test_reader_renormalises_and_matches_teacher(tmp_path, teacher, data):
    cuts, feats = data
    index = _label(tmp_path, teacher, data)
    reader = PseudoLabelReader(tmp_path, num_senones=40)
    assert len(reader) == len(cuts) and reader.num_frames == index["totals"]["frames"]
    n = 0
    for cid, ids, probs in reader:
        assert ids.dtype == torch.int64 and probs.dtype == torch.float32
        torch.testing.assert_close(probs.sum(-1), torch.ones(len(probs)), atol=1e-6, rtol=0)
        with torch.no_grad():
            z, _ = teacher(torch.from_numpy(feats[cid])[None])
        ref = torch.softmax(z[0], -1).topk(8, -1)
        assert torch.equal(ids, ref.indices)
        torch.testing.assert_close(probs, ref.values / ref.values.sum(-1, keepdim=True), atol=2e-3, rtol=2e-3)
        n += 1
    assert n == len(cuts)
    ids, probs = reader.get("utt004")
    assert ids.shape[0] == feats["utt004"].shape[0]
    with pytest.raises(KeyError, match="nope"):
        reader.get("nope")


def test_checksum_failure_refused_with_path_and_relabel_regenerates(tmp_path, teacher, data):
    _label(tmp_path, teacher, data)
    good = (tmp_path / "shard-00001.bin").read_bytes()
    bad = bytearray(good)
    bad[-10] ^= 0xFF
    (tmp_path / "shard-00001.bin").write_bytes(bytes(bad))
    reader = PseudoLabelReader(tmp_path)
    with pytest.raises(ChecksumError, match="shard-00001.bin"):
        list(reader)
    # a re-run of labelling notices the corrupt shard and regenerates it, byte-identical
    _label(tmp_path, teacher, data)
    assert (tmp_path / "shard-00001.bin").read_bytes() == good
    assert len(list(PseudoLabelReader(tmp_path))) == len(data[0])


def test_truncated_shard_refused(tmp_path, teacher, data):
    _label(tmp_path, teacher, data)
    p = tmp_path / "shard-00000.bin"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(ShardError, match="truncated"):
        Shard(p)


def test_num_senones_and_tree_mismatch_refused(tmp_path, teacher, data):
    tree = tmp_path / "tree"
    tree.write_bytes(b"ContextDependency 3 1 ToPdf CE 0 EndContextDependency ")
    out = tmp_path / "pseudo"
    cuts, feats = data
    label_cuts(teacher, cuts, lambda c: feats[c.id], out, shard_size=5, k=8, tree_checksum=tree_checksum(tree))
    merge_indices(out)
    PseudoLabelReader(out, num_senones=40, tree_checksum=tree_checksum(tree))  # fine
    with pytest.raises(LabelMismatchError, match="num_senones=40 but the trainer expects 41"):
        PseudoLabelReader(out, num_senones=41)
    other = tmp_path / "tree2"
    other.write_bytes(b"ContextDependency 3 1 ToPdf CE 1 EndContextDependency ")
    with pytest.raises(LabelMismatchError, match="senone tree"):
        PseudoLabelReader(out, num_senones=40, tree_checksum=tree_checksum(other))


def test_index_lists_shards_utts_checksums(tmp_path, teacher, data):
    cuts, feats = data
    index = _label(tmp_path, teacher, data)
    on_disk = json.loads((tmp_path / "index.json").read_text())
    assert on_disk == index
    assert index["k"] == 8 and index["num_senones"] == 40 and index["num_shards"] == 5
    assert [u[0] for s in index["shards"] for u in s["utts"]] == [c.id for c in cuts]
    assert all(u[1] == feats[u[0]].shape[0] for s in index["shards"] for u in s["utts"])
    for s in index["shards"]:
        assert s["checksum"] == file_checksum(tmp_path / s["name"])
    assert (tmp_path / ".index.json.done").exists()


def test_reader_opens_the_compact_index_and_falls_back_to_index_json(tmp_path, teacher, data):
    """merge_indices writes a sorted id table (memory-mapped by readers) beside index.json; a reader
    of an index.json without it (older merges), or whose index.json changed since, reads index.json."""
    from asrkit.pseudo.shards import ID_TABLE, INDEX_HEAD, LOC_TABLE

    cuts, feats = data
    _label(tmp_path, teacher, data)
    assert all((tmp_path / f).exists() for f in (ID_TABLE, LOC_TABLE, INDEX_HEAD))
    head = json.loads((tmp_path / INDEX_HEAD).read_text())
    assert all("utts" not in sh for sh in head["shards"]) and sum(sh["num_utts"] for sh in head["shards"]) == len(cuts)
    compact = PseudoLabelReader(tmp_path)
    assert isinstance(compact._table.ids, np.memmap) and "utts" not in compact.index["shards"][0]
    expected = {c.id: feats[c.id].shape[0] for c in cuts}
    assert {c: compact.frames_of(c) for c in expected} == expected and compact.frames_of("utt999") is None
    assert compact.cut_ids() == [c.id for c in cuts] and "utt003" in compact and "x" not in compact
    assert compact.frames_table() == expected and compact.num_frames == sum(expected.values())
    ids, probs = compact.get("utt007")
    ids2, probs2 = next((i, p) for cid, i, p in compact if cid == "utt007")
    assert torch.equal(ids, ids2) and torch.equal(probs, probs2)
    # index.json rewritten since (here: reformatted): the compact files no longer describe it
    full = json.loads((tmp_path / "index.json").read_text())
    (tmp_path / "index.json").write_text(json.dumps(full, indent=2))
    stale = PseudoLabelReader(tmp_path)
    assert not isinstance(stale._table.ids, np.memmap) and "utts" in stale.index["shards"][0]
    assert stale.cut_ids() == compact.cut_ids() and stale.frames_table() == expected
    for f in (ID_TABLE, LOC_TABLE, INDEX_HEAD):  # an index merged before the compact files existed
        (tmp_path / f).unlink()
    old = PseudoLabelReader(tmp_path)
    assert old.frames_of("utt004") == expected["utt004"] and torch.equal(old.get("utt007")[0], ids)
