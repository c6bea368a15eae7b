"""Streaming manifests: line-by-line reading, copying by position, the on-disk cut store."""
import gzip
import json

import pytest

from asrkit.data.cutstore import CutStore, as_sources
from asrkit.data.lazy import ManifestError, copy_manifest_lines, iter_manifest_dicts, open_cuts


def _cuts(n, prefix="u"):
    from lhotse import MonoCut, SupervisionSegment

    return [MonoCut(id=f"{prefix}{i:03d}", start=0.0, duration=1.0 + i / 10, channel=0,
                    supervisions=[SupervisionSegment(id=f"{prefix}{i:03d}", recording_id="r", start=0.0,
                                                     duration=1.0 + i / 10, text=f"w{i}", speaker="s")])
            for i in range(n)]


def _write(path, cuts):
    from lhotse import CutSet

    CutSet.from_cuts(cuts).to_file(path)
    return path


def test_dicts_in_order_and_a_bad_line_named(tmp_path):
    p = _write(tmp_path / "c.jsonl.gz", _cuts(4))
    assert [d["id"] for d in iter_manifest_dicts(p)] == ["u000", "u001", "u002", "u003"]
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt") as f:
        f.write('{"id": "a", "duration": 1}\n{not json\n')
    with pytest.raises(ManifestError, match=r"bad.jsonl.gz: line 2"):
        list(iter_manifest_dicts(bad))
    with pytest.raises(FileNotFoundError):
        list(iter_manifest_dicts(tmp_path / "none.jsonl.gz"))


def test_copy_lines_by_position_atomically(tmp_path):
    src = _write(tmp_path / "c.jsonl.gz", _cuts(5))
    n = copy_manifest_lines(src, tmp_path / "out.jsonl.gz", [True, False, True, False, True])
    assert n == 3
    assert [c.id for c in open_cuts(tmp_path / "out.jsonl.gz")] == ["u000", "u002", "u004"]
    with pytest.raises(ManifestError, match="changed"):
        copy_manifest_lines(src, tmp_path / "short.jsonl.gz", [True] * 6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl.gz", "out.jsonl.gz"]  # nothing half-written


def test_store_reads_cuts_back_by_position(tmp_path):
    cuts = _cuts(7)
    a = _write(tmp_path / "a.jsonl.gz", cuts[:4])
    b = _write(tmp_path / "b.jsonl.gz", cuts[4:])
    seen = []
    store = CutStore([a, b], visit=lambda d: seen.append(d["id"]) or d["id"] != "u002")
    assert seen == [c.id for c in cuts]  # every line visited, in order
    kept = [c for c in cuts if c.id != "u002"]  # the one the visitor refused is left out
    assert len(store) == 6 and [store.cut_id(i) for i in range(6)] == [c.id for c in kept]
    assert [c.to_dict() for c in store] == [c.to_dict() for c in kept]
    assert store[-1].id == "u006" and store[2].supervisions[0].text == "w3"
    with pytest.raises(IndexError):
        store[6]


def test_store_refuses_a_duplicate_id(tmp_path):
    a = _write(tmp_path / "a.jsonl.gz", _cuts(3))
    with pytest.raises(ValueError, match=r"cut u00\d appears twice"):
        CutStore([a, a])


def test_sources_of_paths_and_lazy_sets(tmp_path):
    p = _write(tmp_path / "a.jsonl.gz", _cuts(2))
    assert as_sources(p) == [p] and as_sources(str(p)) == [p] and as_sources([p, p]) == [p, p]
    assert as_sources(open_cuts(p)) == [p]
    assert as_sources(_cuts(2)) is None and as_sources(open_cuts(p).to_eager()) is None
