import numpy as np
import pytest
import torch

from asrkit.features.reader import FeatureReader
from asrkit.features.stack import num_frames, num_stacked_frames
from asrkit.nnet.dataset import (ChunkDataset, TargetsError, check_cuts, make_loader, make_segments)
from asrkit.nnet.losses import IGNORE_INDEX, compute_loss
from asrkit.nnet.sampler import BucketingBatchSampler

from .conftest import NUM_SENONES


def test_check_cuts_lengths(toy_cuts):
    lengths = check_cuts(toy_cuts)
    assert lengths == [num_stacked_frames(num_frames(c.duration)) for c in toy_cuts]
    assert 39 in lengths  # n = 115: lhotse's load_senones() would give 38


def test_wrong_length_targets_refused_with_cut_id(toy_cuts, toy_cmvn_path, tmp_path):
    from lhotse import NumpyFilesWriter

    cuts = list(toy_cuts)
    bad = cuts[2]
    T = num_stacked_frames(num_frames(bad.duration))
    with NumpyFilesWriter(tmp_path / "bad") as w:
        bad.senones = w.store_array(bad.id, np.zeros(T - 1, np.int16), frame_shift=0.03, temporal_dim=0)
    with pytest.raises(TargetsError, match=bad.id) as e:
        ChunkDataset.from_cuts(cuts, FeatureReader(toy_cmvn_path))
    assert e.value.cut_id == bad.id and "ceil(n/3)" in str(e.value)


def test_missing_targets_refused(toy_cuts):
    cuts = list(toy_cuts)
    del cuts[0].custom["senones"]
    with pytest.raises(TargetsError, match=f"{cuts[0].id}.*no 'senones'"):
        check_cuts(cuts)


def test_segments_and_context():
    segs = make_segments([450, 100, 205], chunk_size=200, left_context=20, right_context=5, min_chunk=10)
    assert [(s.cut, s.start, s.end, s.ctx_start, s.ctx_end) for s in segs] == [
        (0, 0, 200, 0, 205), (0, 200, 400, 180, 405), (0, 400, 450, 380, 450),
        (1, 0, 100, 0, 100), (2, 0, 205, 0, 205)]  # the 5-frame tail of cut 2 merged


def test_batch_layout(toy_cuts, toy_cmvn_path):
    reader = FeatureReader(toy_cmvn_path)
    ds = ChunkDataset.from_cuts(toy_cuts, reader, chunk_size=16, left_context=4, num_senones=NUM_SENONES)
    idx = list(range(len(ds)))
    b = ds[idx]
    assert b["features"].shape[2] == 192 and b["kind"] == "hard"
    assert torch.equal(b["mask"], b["targets"] != IGNORE_INDEX)
    assert int(b["mask"].sum()) == sum(check_cuts(toy_cuts)) == ds.scored_frames()
    # each row: the chunk's features and targets, context unscored
    for row, i in enumerate(idx):
        s = ds.segments[i]
        cut = ds.cuts[s.cut]
        feats = reader(cut)
        tgt = cut.custom["senones"].load().astype(np.int64)
        L = s.ctx_end - s.ctx_start
        np.testing.assert_allclose(b["features"][row, :L].numpy(), feats[s.ctx_start:s.ctx_end])
        assert (b["features"][row, L:] == 0).all()
        a = s.start - s.ctx_start
        assert (b["targets"][row, :a] == IGNORE_INDEX).all()
        np.testing.assert_array_equal(b["targets"][row, a:a + s.end - s.start].numpy(), tgt[s.start:s.end])
        assert b["cut_ids"][row] == cut.id


def test_sampler_bounds_and_determinism():
    lengths = np.random.default_rng(0).integers(10, 220, size=200)
    s = BucketingBatchSampler(lengths, max_frames=1000, num_buckets=5, seed=3)
    b0 = s.batches(0)
    assert sorted(i for b in b0 for i in b) == list(range(200))
    assert all(max(lengths[b]) * len(b) <= 1000 or len(b) == 1 for b in b0)
    assert s.batches(0) == BucketingBatchSampler(lengths, 1000, 5, seed=3).batches(0)
    assert s.batches(1) != b0
    s.set_epoch(0, start_batch=4)
    assert list(s) == b0[4:]


def test_workers_give_the_same_batches(toy_cuts, toy_cmvn_path):
    ds = ChunkDataset.from_cuts(toy_cuts, FeatureReader(toy_cmvn_path), chunk_size=20, left_context=5)
    s = BucketingBatchSampler(ds.input_lengths(), max_frames=200, seed=1)
    b0 = list(make_loader(ds, s, num_workers=0))
    b2 = list(make_loader(ds, s, num_workers=2))
    assert len(b0) == len(b2) == s.num_batches()
    for x, y in zip(b0, b2):
        assert x["cut_ids"] == y["cut_ids"]
        assert torch.equal(x["features"], y["features"]) and torch.equal(x["targets"], y["targets"])


def test_soft_topk_loss_matches_manual():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 10, requires_grad=True)
    ids = torch.randint(0, 10, (2, 5, 3))
    probs = torch.rand(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    probs[1, 3:] = 0.0  # padding: 0/0 would be NaN if it were not masked
    st = compute_loss(logits, {"kind": "soft", "topk_ids": ids, "topk_probs": probs, "mask": mask})
    logp = torch.log_softmax(logits, -1)
    ref = 0.0
    for b in range(2):
        for t in range(5):
            if mask[b, t]:
                q = probs[b, t] / probs[b, t].sum()
                ref = ref - (q * logp[b, t, ids[b, t]]).sum()
    assert int(st.frames) == 8
    torch.testing.assert_close(st.loss_sum, ref)
    st.loss.backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[1, 3:] == 0).all()
    with pytest.raises(ValueError, match="kind"):
        compute_loss(logits, {"kind": "dense"})


def test_manifest_streamed_into_a_store_gives_the_same_dataset(toy_dir, toy_cuts, toy_cmvn_path):
    """A path is read in one pass into a CutStore: the same segments, batches and arrays as the cuts."""
    from asrkit.data.cutstore import CutStore
    from asrkit.nnet.dataset import SegmentTable, load_cuts

    reader = FeatureReader(toy_cmvn_path)
    kw = dict(chunk_size=16, left_context=4, min_chunk=5, num_senones=NUM_SENONES)
    mem = ChunkDataset.from_cuts(list(toy_cuts), reader, **kw)
    for src in (toy_dir / "cuts.jsonl.gz", load_cuts(toy_dir / "cuts.jsonl.gz")):
        ds = ChunkDataset.from_cuts(src, reader, **kw)
        assert isinstance(ds.cuts, CutStore) and isinstance(ds.segments, SegmentTable)
        assert list(ds.segments) == list(mem.segments) and ds.scored_frames() == mem.scored_frames()
        np.testing.assert_array_equal(ds.input_lengths(), mem.input_lengths())
        np.testing.assert_array_equal(ds.durations(), [c.duration for c in toy_cuts])
        assert [ds.cut_id(i) for i in range(len(ds.cuts))] == [c.id for c in toy_cuts]
        s1 = BucketingBatchSampler(ds.input_lengths(), max_frames=200, seed=3)
        s2 = BucketingBatchSampler(mem.input_lengths(), max_frames=200, seed=3)
        assert s1.batches(0) == s2.batches(0)
        for b in s1.batches(0)[:3]:
            x, y = ds[b], mem[b]
            assert x["cut_ids"] == y["cut_ids"]
            for k in ("features", "targets", "mask", "starts", "lengths"):
                assert torch.equal(x[k], y[k])
    left = ChunkDataset.from_cuts(toy_dir / "cuts.jsonl.gz", reader, keep=lambda cid: cid != toy_cuts[1].id, **kw)
    assert [left.cut_id(i) for i in range(len(left.cuts))] == [c.id for c in toy_cuts if c.id != toy_cuts[1].id]


def test_segment_table_matches_make_segments():
    from asrkit.nnet.dataset import SegmentTable

    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 700, 200).tolist() + [0, 1, 200, 201, 219, 220, 221]
    for cfg in ((200, 20, 0, 20), (0, 0, 0, 1), (50, 10, 7, 30)):
        t = SegmentTable(*cfg)
        for i, T in enumerate(lengths):
            t.add(i, T)
        ref = make_segments(lengths, *cfg)
        assert list(t) == ref and len(t) == len(ref)
        assert t.input_lengths().tolist() == [s.input_len for s in ref]
        assert t.scored_frames() == sum(s.end - s.start for s in ref)


def test_manifest_with_wrong_targets_refused_naming_the_cut(toy_dir, toy_cuts, toy_cmvn_path, tmp_path):
    import gzip
    import json

    lines = gzip.open(toy_dir / "cuts.jsonl.gz", "rt").read().splitlines()
    d = json.loads(lines[2])
    d["custom"]["senones"]["array"]["shape"] = [d["custom"]["senones"]["array"]["shape"][0] - 1]
    lines[2] = json.dumps(d)
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(TargetsError, match=f"cut {d['id']}: 'senones' has .* ceil\\(n/3\\)"):
        ChunkDataset.from_cuts(bad, FeatureReader(toy_cmvn_path))


def test_store_read_by_forked_loader_workers(toy_dir, toy_cmvn_path):
    """Workers forked by the DataLoader share the store's spill file (positional reads): same batches."""
    ds = ChunkDataset.from_cuts(toy_dir / "cuts.jsonl.gz", FeatureReader(toy_cmvn_path), chunk_size=16,
                                left_context=4, num_senones=NUM_SENONES)
    batches = BucketingBatchSampler(ds.input_lengths(), max_frames=200, seed=2).batches(0)
    here = list(make_loader(ds, batches, num_workers=0))
    forked = list(make_loader(ds, batches, num_workers=2))
    assert len(here) == len(forked) == len(batches)
    for x, y in zip(here, forked):
        assert x["cut_ids"] == y["cut_ids"] and torch.equal(x["features"], y["features"])
        assert torch.equal(x["targets"], y["targets"])
