"""Boundary comparison on hand-made segmentations."""
from __future__ import annotations

import pytest

from asrkit.gmm import compare_boundaries, read_ctm, word_segments


def test_agreeing_sequences():
    ref = [("a", 0.10, 0.1), ("b", 0.20, 0.1), ("c", 0.30, 0.1)]
    hyp = [("a", 0.11, 0.1), ("b", 0.24, 0.1), ("c", 0.40, 0.1)]
    st = compare_boundaries(hyp, ref)
    assert st.compared == 3 and st.within_20ms == 1 and st.within_50ms == 2 and st.utts_disagreeing == 0
    assert st.mean_abs_error == pytest.approx((0.01 + 0.04 + 0.10) / 3)


def test_disagreeing_sequences_compare_matched_pairs_only():
    ref = [("a", 0.1, 0.1), ("b", 0.2, 0.1), ("c", 0.3, 0.1), ("d", 0.4, 0.1)]
    hyp = [("a", 0.1, 0.1), ("x", 0.2, 0.1), ("c", 0.3, 0.1), ("d", 0.42, 0.1), ("e", 0.5, 0.1)]
    st = compare_boundaries(hyp, ref)
    assert st.utts_disagreeing == 1 and st.compared == 3 and st.within_20ms == 3
    # a deletion shifts the pairing: b is missing from hyp, c/d still pair with c/d
    st = compare_boundaries([("a", 0.1, 0.1), ("c", 0.3, 0.1), ("d", 0.4, 0.1)], ref)
    assert st.compared == 3 and st.within_20ms == 3


def test_ctm_and_word_grouping(tmp_path):
    p = tmp_path / "phones.ctm"
    p.write_text("u1 1 0.10 0.05 w\nu1 1 0.15 0.05 V\nu1 1 0.20 0.05 n\nu2 1 0.0 0.1 t\n")
    ctm = read_ctm(p)
    assert ctm["u1"][1] == ("V", 0.15, 0.05) and len(ctm["u2"]) == 1
    ws = word_segments(ctm["u1"] + [("t", 0.3, 0.1), ("u:", 0.4, 0.1)], ["one", "two"],
                       {"one": "w V n", "two": "t u:"})
    assert ws == [("one", 0.10, pytest.approx(0.15)), ("two", 0.3, pytest.approx(0.2))]
    with pytest.raises(ValueError):
        (tmp_path / "bad.ctm").write_text("u1 1 0.1\n")
        read_ctm(tmp_path / "bad.ctm")
