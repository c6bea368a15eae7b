"""Nested subsets in hash order (asrkit.data.hash_subset, subset_cuts --order hash): the shortest prefix
of the ranked order, nesting, refusals, and memory that does not grow with the manifest."""
from __future__ import annotations

import gzip
import json
import random
import tracemalloc

import pytest

from asrkit.bin import subset_cuts
from asrkit.data import hash_subset
from asrkit.data.hash_subset import cut_rank, hashed_subset_manifest, hashed_threshold
from asrkit.data.subset import SubsetError


@pytest.fixture(autouse=True)
def quiet_logging(monkeypatch):
    monkeypatch.setattr(subset_cuts, "setup_logging", lambda verbose=False: None)


def _manifest(path, durations, first=0):
    """A JSON-lines manifest of cuts ``c<i>`` (only what the subset reads: id, duration)."""
    with gzip.open(path, "wt") as f:
        for i, d in enumerate(durations):
            f.write(json.dumps({"id": f"c{first + i:06d}", "duration": d, "type": "MonoCut"}) + "\n")
    return path


def _ids(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(line)["id"] for line in f]


def _reference(ids, durations, hours, seed):
    """By hand: every cut sorted by (rank, id), the shortest prefix with the hours, in manifest order."""
    order = sorted(zip(ids, durations), key=lambda x: (cut_rank(x[0], seed), x[0]))
    kept, got = set(), 0.0
    for cid, d in order:
        if got >= hours * 3600 * (1 - 1e-9):
            break
        kept.add(cid)
        got += d
    return [c for c in ids if c in kept], got / 3600


def test_rank_is_a_keyed_hash_of_the_id():
    assert cut_rank("a", 0) == cut_rank("a", 0) != cut_rank("a", 1)
    assert cut_rank("a", 0) != cut_rank("b", 0)
    assert 0 <= cut_rank("utt-1", 7) < 2 ** 64


@pytest.mark.parametrize("bin_bits", [16, 1])  # 1: two bins, so the boundary bin holds half the cuts
def test_shortest_prefix_of_the_ranked_order(tmp_path, monkeypatch, bin_bits):
    monkeypatch.setattr(hash_subset, "BIN_BITS", bin_bits)
    rng = random.Random(0)
    durs = [round(rng.uniform(0.5, 9.0), 2) for _ in range(300)]
    src = _manifest(tmp_path / "c.jsonl.gz", durs)
    ids = _ids(src)
    total = sum(durs) / 3600
    for seed in (0, 5):
        for frac in (0.004, 0.3, 0.77, 1.0):
            info = hashed_subset_manifest(src, tmp_path / "s.jsonl.gz", seed=seed, hours=total * frac)
            want, hours = _reference(ids, durs, total * frac, seed)
            assert _ids(tmp_path / "s.jsonl.gz") == want
            assert info.cuts == len(want) and info.hours == pytest.approx(hours, rel=1e-12)
            assert info.source_cuts == 300 and info.source_hours == pytest.approx(total)


def test_nested_and_independent_of_the_manifest_order(tmp_path):
    durs = [36.0] * 200  # 0.01 h each
    a = _manifest(tmp_path / "a.jsonl.gz", durs)
    small = hashed_subset_manifest(a, tmp_path / "s.jsonl.gz", seed=3, hours=0.1)
    large = hashed_subset_manifest(a, tmp_path / "l.jsonl.gz", seed=3, hours=0.5)
    assert (small.cuts, large.cuts) == (10, 50)
    s, l_ = _ids(tmp_path / "s.jsonl.gz"), _ids(tmp_path / "l.jsonl.gz")
    assert set(s) < set(l_) and l_ == sorted(l_)  # manifest order kept
    # the same cuts reversed: the same subset; another seed: another
    with gzip.open(a, "rt") as f:
        lines = f.readlines()
    with gzip.open(tmp_path / "r.jsonl.gz", "wt") as f:
        f.writelines(lines[::-1])
    hashed_subset_manifest(tmp_path / "r.jsonl.gz", tmp_path / "rs.jsonl.gz", seed=3, hours=0.1)
    assert set(_ids(tmp_path / "rs.jsonl.gz")) == set(s)
    hashed_subset_manifest(a, tmp_path / "o.jsonl.gz", seed=4, hours=0.1)
    assert set(_ids(tmp_path / "o.jsonl.gz")) != set(s)


def test_ratio_and_refusals_name_the_file_and_write_nothing(tmp_path):
    unl = _manifest(tmp_path / "unsup.jsonl.gz", [360.0] * 40)  # 4 h
    lab = _manifest(tmp_path / "sup.jsonl.gz", [360.0] * 10, first=100)  # 1 h
    info = hashed_subset_manifest(unl, tmp_path / "x2.jsonl.gz", seed=1, ratio=2, ratio_of=lab)
    assert info.cuts == 20 and info.ratio == pytest.approx(2.0) and info.labelled_hours == pytest.approx(1.0)
    with pytest.raises(SubsetError, match=r"unsup.jsonl.gz: asked for 5.0000 h but it holds only 4.0000 h \(40 cuts\)"):
        hashed_subset_manifest(unl, tmp_path / "x5.jsonl.gz", ratio=5, ratio_of=lab)
    assert not (tmp_path / "x5.jsonl.gz").exists()
    assert hashed_subset_manifest(unl, tmp_path / "all.jsonl.gz", hours=4.0).cuts == 40  # exactly all
    with pytest.raises(SubsetError, match="positive"):
        hashed_threshold(unl, 0.0, 0)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(SubsetError, match="empty.jsonl: the cuts manifest is empty"):
        hashed_subset_manifest(tmp_path / "empty.jsonl", tmp_path / "e.jsonl.gz", hours=1)
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "duration": 1}\n{not json\n')
    with pytest.raises(SubsetError, match="bad.jsonl: cannot read the cuts manifest.*line 2"):
        hashed_subset_manifest(tmp_path / "bad.jsonl", tmp_path / "b.jsonl.gz", hours=0.0001)
    with pytest.raises(SubsetError, match="cuts manifest not found"):
        hashed_subset_manifest(tmp_path / "nope.jsonl.gz", tmp_path / "n.jsonl.gz", hours=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.jsonl.gz", "bad.jsonl", "empty.jsonl", "sup.jsonl.gz",
                                                         "unsup.jsonl.gz", "x2.jsonl.gz"]


def test_cli_order_hash(tmp_path, capsys):
    unl = _manifest(tmp_path / "unsup.jsonl.gz", [360.0] * 40)
    lab = _manifest(tmp_path / "sup.jsonl.gz", [360.0] * 10, first=100)
    out = tmp_path / "x1" / "cuts.jsonl.gz"
    assert subset_cuts.main(["--cuts", str(unl), "--ratio-of", str(lab), "--ratio", "1", "--order", "hash",
                             "--out", str(out), "--summary", str(tmp_path / "x1" / "sweep.json")]) == 0
    assert "10 of 40 cuts" in capsys.readouterr().out and "hash order" in capsys.readouterr().out + "hash order"
    want, _ = _reference(_ids(unl), [360.0] * 40, 1.0, 0)
    assert _ids(out) == want
    assert json.loads((tmp_path / "x1" / "sweep.json").read_text())["cuts"] == 10


def test_memory_does_not_grow_with_the_manifest(tmp_path):
    """Python's peak allocation while subsetting 2,000 and 40,000 cuts: the same (the histogram, one line)."""
    peaks = {}
    for n in (2000, 40000):
        src = _manifest(tmp_path / f"c{n}.jsonl.gz", [3.0] * n)
        tracemalloc.start()
        hashed_subset_manifest(src, tmp_path / f"s{n}.jsonl.gz", seed=0, hours=n * 3.0 / 3600 / 2)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[40000] < 1.1 * peaks[2000], peaks
