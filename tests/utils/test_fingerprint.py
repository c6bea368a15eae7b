"""asrkit.utils.fingerprint: done markers that remember their inputs and options."""
from __future__ import annotations

import json
import logging

import pytest

from asrkit.utils.atomic import done_marker, mark_done
from asrkit.utils.fingerprint import StaleOutputError, changes, digest, fingerprint, guard


def make_output(tmp_path, name="out.txt"):
    p = tmp_path / name
    p.write_text("x")
    mark_done(p)
    return p


def test_digest_of_files_and_directories(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d/a").write_text("1")
    d1 = digest(tmp_path / "d")
    (tmp_path / "d/.hidden").write_text("ignored")
    assert digest(tmp_path / "d") == d1
    (tmp_path / "d/a").write_text("2")
    assert digest(tmp_path / "d") != d1
    assert digest(tmp_path / "nothing") == "missing"
    assert digest(tmp_path / "d/a") == "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35"  # sha256("2")


def test_first_run_then_same_inputs_then_changed(tmp_path):
    inp = tmp_path / "lexicon.txt"
    inp.write_text("A a\n")
    out = tmp_path / "L.fst"
    fp = fingerprint({"order": 3, "verbose": True}, {"lexicon": inp})
    assert "verbose" not in fp["options"]
    g = guard("the lang", [out], fp)
    assert not g.done
    out.write_text("fst")
    mark_done(out)
    g.stamp()
    assert json.loads(done_marker(out).read_text())["fingerprint"] == fp
    assert guard("the lang", [out], fingerprint({"order": 3}, {"lexicon": inp})).done
    inp.write_text("A a a\n")  # same name, new content
    with pytest.raises(StaleOutputError, match=r"the lang: done, but from other inputs or options: "
                                               r"input lexicon: .*lexicon.txt changed since.*--force"):
        guard("the lang", [out], fingerprint({"order": 3}, {"lexicon": inp}))
    with pytest.raises(StaleOutputError, match=r"option --order: 3 -> 4"):
        guard("the lang", [out], fingerprint({"order": 4}, {"lexicon": inp}))
    g = guard("the lang", [out], fingerprint({"order": 4}, {"lexicon": inp}), force=True)
    assert g.redo and not g.done and any("--order" in c for c in g.changed)


def test_another_path_is_named_with_both_paths(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("same")
    b.write_text("same")
    lines = changes(fingerprint({}, {"data_dir": a}), fingerprint({}, {"data_dir": b}))
    assert lines == [f"input data_dir: {a} -> {b} (same content)"]


def test_old_marker_without_fingerprint_accepted_with_a_note(tmp_path, caplog):
    out = make_output(tmp_path)
    with caplog.at_level(logging.WARNING):
        g = guard("manifests of dev", [out], fingerprint({"x": 1}, {}))
    assert g.done and g.legacy
    assert "without a fingerprint" in caplog.text and "accepted" in caplog.text
    g.stamp()  # not redone: the old marker stays as it was
    assert done_marker(out).read_text() == ""


def test_one_missing_output_means_not_done(tmp_path):
    out = make_output(tmp_path)
    g = guard("x", [out, tmp_path / "other"], fingerprint({}, {}))
    assert not g.done and not g.changed


def test_fresh_remembers_inputs_and_falls_back_to_times_for_old_markers(tmp_path):
    import os

    from asrkit.utils.fingerprint import fresh, stamp

    a, b, out = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "scores"
    a.write_text("A")
    b.write_text("B")
    out.mkdir()
    fp_a = fingerprint({}, {"model": a})
    assert fresh(out, fp_a) == (False, [])  # not done
    mark_done(out)  # an older asrkit's marker: no fingerprint, make's rule on the times
    os.utime(a, (1, 1))
    assert fresh(out, fp_a) == (True, [])
    os.utime(a, None)
    os.utime(done_marker(out), (2, 2))
    assert fresh(out, fp_a) == (False, [])
    stamp(out, fp_a)
    assert fresh(out, fp_a) == (True, [])
    os.utime(b, (1, 1))  # older than the marker, but another file: remade all the same
    done, changed = fresh(out, fingerprint({}, {"model": b}))
    assert not done and changed == [f"input model: {a} -> {b}"]
