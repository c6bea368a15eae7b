"""Tree statistics: accumulation against a slow reference, merging, saving."""
from __future__ import annotations

import numpy as np
import pytest

from asrkit.tree.stats import TreeStats, accumulate_tree_stats, frame_contexts, gauss_objf


def _slow_reference(phones, pdfs, feats, lengths, starts, n=3, p=1, ci=()):
    acc = {}
    t0 = 0
    for length in lengths:
        # phone instances of this utterance
        segs = []
        for t in range(t0, t0 + length):
            if t == t0 or starts[t]:
                segs.append([phones[t], []])
            segs[-1][1].append(t)
        for i, (ph, frames) in enumerate(segs):
            ctx = []
            for j in range(n):
                k = i + j - p
                ctx.append(segs[k][0] if 0 <= k < len(segs) else 0)
            if ph in ci:
                ctx = [ph if j == p else 0 for j in range(n)]
            if ph == 0:
                continue
            for t in frames:
                key = (tuple(ctx), int(pdfs[t]))
                c, s, q = acc.get(key, (0.0, 0.0, 0.0))
                x = feats[t].astype(np.float64)
                acc[key] = (c + 1, s + x, q + x * x)
        t0 += length
    return acc


def _random_alignment(rng, num_utts=20, num_phones=5, dim=3):
    phones, pdfs, starts, lengths = [], [], [], []
    for _ in range(num_utts):
        t0 = len(phones)
        for _ in range(int(rng.integers(1, 8))):
            ph = int(rng.integers(0, num_phones + 1))  # includes 0 (gaps) and repeated phones
            for k in range(int(rng.integers(1, 4))):
                phones.append(ph)
                pdfs.append(min(k, 1))
                starts.append(k == 0)
        lengths.append(len(phones) - t0)
    feats = rng.normal(size=(len(phones), dim)).astype(np.float32)
    return np.array(phones), np.array(pdfs), feats, np.array(lengths), np.array(starts)


@pytest.mark.parametrize("n,p,ci", [(3, 1, ()), (1, 0, ()), (3, 1, (2,)), (2, 1, ())])
def test_accumulate_matches_slow_reference(n, p, ci):
    rng = np.random.default_rng(1)
    phones, pdfs, feats, lengths, starts = _random_alignment(rng)
    st = accumulate_tree_stats(phones, pdfs, feats, context_width=n, central_position=p,
                               phone_starts=starts, utt_lengths=lengths, ci_phones=ci)
    ref = _slow_reference(phones, pdfs, feats, lengths, starts, n, p, ci)
    assert st.num_contexts == len(ref)
    got = {(tuple(c), int(k)): i for i, (c, k) in enumerate(zip(st.contexts.tolist(), st.pdf_classes))}
    assert set(got) == set(ref)
    for key, (c, s, q) in ref.items():
        i = got[key]
        assert st.counts[i] == c
        np.testing.assert_allclose(st.sums[i], s, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(st.sumsqs[i], q, rtol=1e-6, atol=1e-6)


def test_runs_define_phones_without_starts():
    phones = np.array([1, 1, 2, 2, 2, 3])
    ctx = frame_contexts(phones)
    assert ctx.tolist() == [[0, 1, 2]] * 2 + [[1, 2, 3]] * 3 + [[2, 3, 0]]
    ctx = frame_contexts(phones, utt_lengths=[3, 3])
    assert ctx[2].tolist() == [1, 2, 0] and ctx[3].tolist() == [0, 2, 3]


def test_merge_save_load(tmp_path):
    rng = np.random.default_rng(2)
    phones, pdfs, feats, lengths, starts = _random_alignment(rng, num_utts=30)
    whole = accumulate_tree_stats(phones, pdfs, feats, phone_starts=starts, utt_lengths=lengths)
    cut = int(lengths[:12].sum())
    a = accumulate_tree_stats(phones[:cut], pdfs[:cut], feats[:cut], phone_starts=starts[:cut],
                              utt_lengths=lengths[:12])
    b = accumulate_tree_stats(phones[cut:], pdfs[cut:], feats[cut:], phone_starts=starts[cut:],
                              utt_lengths=lengths[12:])
    merged = TreeStats.merge([a, b])
    np.testing.assert_array_equal(merged.contexts, whole.contexts)
    np.testing.assert_array_equal(merged.pdf_classes, whole.pdf_classes)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    np.testing.assert_allclose(merged.sums, whole.sums, atol=1e-9)
    np.testing.assert_allclose(merged.sumsqs, whole.sumsqs, atol=1e-9)
    path = tmp_path / "stats" / "tree_stats.npz"
    merged.save(path)
    back = TreeStats.load(path)
    np.testing.assert_array_equal(back.contexts, merged.contexts)
    np.testing.assert_array_equal(back.sumsqs, merged.sumsqs)
    assert (back.context_width, back.central_position) == (3, 1)


def test_gauss_objf_matches_formula():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 1.5, size=(50, 4))
    c, s, q = np.float64(50), x.sum(0), (x * x).sum(0)
    var = x.var(0)
    expected = -0.5 * 50 * (4 * np.log(2 * np.pi) + np.log(var).sum() + 4)
    assert gauss_objf(c, s, q, 0.01) == pytest.approx(expected)
    assert gauss_objf(np.float64(0), s * 0, q * 0) == 0.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="phone changes"):
        frame_contexts(np.array([1, 2]), phone_starts=np.array([True, False]))
    with pytest.raises(ValueError, match="utt_lengths"):
        frame_contexts(np.array([1, 2]), utt_lengths=[3])
