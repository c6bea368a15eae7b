"""Nested subsets by hours (asrkit.data.subset, asrkit.bin.subset_cuts): nesting, seeds, ratios, refusals."""
from __future__ import annotations

import json

import pytest
from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut

from asrkit.bin import subset_cuts
from asrkit.data.subset import SubsetError, nested_subset, seeded_order, subset_manifest


@pytest.fixture(autouse=True)
def quiet_logging(monkeypatch):
    monkeypatch.setattr(subset_cuts, "setup_logging", lambda verbose=False: None)


def _cuts(durations, first=0):
    return [dummy_cut(first + i, duration=d, recording_duration=d) for i, d in enumerate(durations)]


def _manifest(path, cuts):
    CutSet.from_cuts(cuts).to_file(path)
    return path


def test_prefixes_of_one_seeded_order_are_nested():
    cuts = _cuts([36.0] * 100)  # 100 cuts of 0.01 h
    small, h1 = nested_subset(cuts, 0.1, seed=3)
    large, h2 = nested_subset(cuts, 0.25, seed=3)
    assert len(small) == 10 and len(large) == 25 and h1 == pytest.approx(0.1) and h2 == pytest.approx(0.25)
    assert {c.id for c in small} < {c.id for c in large}
    # the prefix of the seeded order, in manifest order
    order = seeded_order([c.id for c in cuts], 3)
    assert {c.id for c in large} == set(order[:25])
    assert [c.id for c in large] == sorted(c.id for c in large)
    # another seed, another subset; the manifest's order does not matter
    assert {c.id for c in nested_subset(cuts, 0.1, seed=4)[0]} != {c.id for c in small}
    assert {c.id for c in nested_subset(cuts[::-1], 0.1, seed=3)[0]} == {c.id for c in small}


def test_shortest_prefix_holding_the_hours():
    cuts = _cuts([1800.0, 1800.0, 1800.0])  # 0.5 h each
    got, hours = nested_subset(cuts, 0.6, seed=0)
    assert len(got) == 2 and hours == 1.0  # one cut is not enough: two
    got, hours = nested_subset(cuts, 1.5, seed=0)  # exactly all
    assert len(got) == 3 and hours == 1.5
    with pytest.raises(SubsetError, match=r"unsup.jsonl.gz: asked for 1.6000 h but it holds only 1.5000 h \(3 cuts\)"):
        nested_subset(cuts, 1.6, seed=0, name="unsup.jsonl.gz")
    with pytest.raises(SubsetError, match="positive"):
        nested_subset(cuts, 0.0, seed=0)


def test_ratio_of_labelled_hours_written_atomically(tmp_path):
    unl = _manifest(tmp_path / "unsup.jsonl.gz", _cuts([360.0] * 40))  # 4 h
    lab = _manifest(tmp_path / "sup.jsonl.gz", _cuts([360.0] * 10, first=100))  # 1 h
    info = subset_manifest(unl, tmp_path / "x2" / "cuts.jsonl.gz", seed=1, ratio=2, ratio_of=lab)
    assert (info.cuts, info.source_cuts) == (20, 40)
    assert info.hours == pytest.approx(2.0) and info.labelled_hours == pytest.approx(1.0)
    assert info.ratio == pytest.approx(2.0) and info.source_hours == pytest.approx(4.0)
    assert len(CutSet.from_file(tmp_path / "x2" / "cuts.jsonl.gz")) == 20
    assert [p.name for p in (tmp_path / "x2").iterdir()] == ["cuts.jsonl.gz"]  # no temporary left
    with pytest.raises(SubsetError, match="at most 4.0000 h"):
        subset_manifest(unl, tmp_path / "x5.jsonl.gz", ratio=5, ratio_of=lab)
    assert not (tmp_path / "x5.jsonl.gz").exists()


def test_cli(tmp_path, capsys, caplog):
    unl = _manifest(tmp_path / "unsup.jsonl.gz", _cuts([360.0] * 40))
    lab = _manifest(tmp_path / "sup.jsonl.gz", _cuts([360.0] * 10, first=100))
    outs = {}
    for r in ("1", "2"):
        d = tmp_path / f"x{r}"
        assert subset_cuts.main(["--cuts", str(unl), "--ratio-of", str(lab), "--ratio", r, "--seed", "5",
                                 "--out", str(d / "cuts.jsonl.gz"), "--summary", str(d / "sweep.json")]) == 0
        s = json.loads((d / "sweep.json").read_text())
        assert s["ratio_requested"] == float(r) and s["ratio"] == pytest.approx(float(r)) and s["seed"] == 5
        assert s["cuts"] == 10 * int(r) and s["source"] == str(unl)
        outs[r] = {c.id for c in CutSet.from_file(d / "cuts.jsonl.gz")}
    assert outs["1"] < outs["2"]
    assert "10 of 40 cuts" in capsys.readouterr().out
    assert subset_cuts.main(["--cuts", str(unl), "--hours", "0.5", "--out", str(tmp_path / "h.jsonl.gz")]) == 0
    assert len(CutSet.from_file(tmp_path / "h.jsonl.gz")) == 5
    # refusals name the file and write nothing
    assert subset_cuts.main(["--cuts", str(unl), "--hours", "9", "--out", str(tmp_path / "big.jsonl.gz")]) == 1
    assert f"{unl}: asked for 9.0000 h" in caplog.text
    assert not (tmp_path / "big.jsonl.gz").exists()
    assert subset_cuts.main(["--cuts", str(tmp_path / "nope.jsonl.gz"), "--hours", "1", "--out",
                             str(tmp_path / "n.jsonl.gz")]) == 1
    assert f"cuts manifest not found: {tmp_path / 'nope.jsonl.gz'}" in caplog.text
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    assert subset_cuts.main(["--cuts", str(tmp_path / "bad.jsonl"), "--hours", "1", "--out",
                             str(tmp_path / "b.jsonl.gz")]) == 1
    assert "bad.jsonl: cannot read the cuts manifest" in caplog.text
    with pytest.raises(SystemExit):
        subset_cuts.main(["--cuts", str(unl), "--ratio", "1", "--out", str(tmp_path / "r.jsonl.gz")])
    assert "--ratio needs --ratio-of" in capsys.readouterr().err


def test_streamed_subset_is_the_in_memory_one(tmp_path):
    """subset_manifest (two streaming passes) picks exactly the cuts nested_subset picks from the list,
    in manifest order, for any manifest order, seed and request."""
    import random

    rng = random.Random(0)
    cuts = _cuts([round(rng.uniform(0.5, 9.0), 2) for _ in range(300)])
    rng.shuffle(cuts)
    src = _manifest(tmp_path / "c.jsonl.gz", cuts)
    total = sum(c.duration for c in cuts) / 3600
    for seed in (0, 5):
        for frac in (0.01, 0.3, 1.0):
            info = subset_manifest(src, tmp_path / "s.jsonl.gz", seed=seed, hours=total * frac)
            want, hours = nested_subset(cuts, total * frac, seed)
            got = list(CutSet.from_file(tmp_path / "s.jsonl.gz"))
            assert [c.id for c in got] == [c.id for c in want] and info.hours == hours
            assert [c.to_dict() for c in got] == [c.to_dict() for c in want]
            assert info.source_hours == total and info.source_cuts == 300


def test_streamed_subset_refuses_a_duplicate_id_naming_the_file(tmp_path):
    cuts = _cuts([1.0, 2.0, 3.0])
    src = _manifest(tmp_path / "c.jsonl.gz", cuts + cuts[1:2])
    with pytest.raises(SubsetError, match=f"c.jsonl.gz: cut {cuts[1].id} appears twice"):
        subset_manifest(src, tmp_path / "s.jsonl.gz", hours=0.0001)
    assert not (tmp_path / "s.jsonl.gz").exists()
