"""Tree building: planted clusters, limits, silence, clustering, determinism."""
from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from asrkit.tree import (Questions, RootSpec, TreeBuildConfig, accumulate_tree_stats, build_tree,
                         cluster_phones, context_dependency_bytes, make_questions, read_roots)
from asrkit.tree.build import _Evaluator
from asrkit.tree.stats import gauss_objf
from asrkit.testing.tree import make_planted_frames

SIL = 6


@pytest.fixture(scope="module")
def planted():
    phones, pdfs, feats, lengths, starts = make_planted_frames(num_utts=400, seed=0)
    return accumulate_tree_stats(phones, pdfs, feats, phone_starts=starts, utt_lengths=lengths)


@pytest.fixture(scope="module")
def planted3():
    phones, pdfs, feats, lengths, starts = make_planted_frames(num_utts=300, num_pdf_classes=3, seed=1)
    return accumulate_tree_stats(phones, pdfs, feats, phone_starts=starts, utt_lengths=lengths)


def _partition(tree, phone, pdf_class=0):
    """Contexts (l, r) of ``phone`` grouped by pdf (r = 0 is never seen: utterances end in silence)."""
    groups = {}
    for l, r in itertools.product(range(7), range(1, 7)):
        groups.setdefault(tree.map((l, phone, r), pdf_class), set()).add((l, r))
    return groups


def test_recovers_planted_right_context_effect(planted):
    q = make_questions(planted, seed=0)
    res = build_tree(planted, q, silence_phones=[SIL], max_leaves=100, thresh=200.0, min_count=20)
    tree = res.tree
    trig = {(l, r) for l, r in itertools.product(range(7), range(1, 7)) if r in (3, 4)}
    for ph in (1, 2):
        groups = _partition(tree, ph)
        assert len(groups) == 2, groups
        assert trig in list(groups.values())
    pdf_sets = [set(_partition(tree, ph)) for ph in range(1, 7)]
    for ph in (3, 4, 5, 6):
        assert len(_partition(tree, ph)) == 1
    # all leaves distinct across phones, numbered contiguously
    all_pdfs = set().union(*pdf_sets)
    assert all_pdfs == set(range(res.num_leaves)) and res.num_leaves == 8
    assert tree.num_pdfs == 8
    # clustering gave no question {3, 4}: two splits per planted phone, then post-clustering merged the
    # leaves with the same underlying Gaussian
    assert res.num_leaves_split == 10 and res.data_limited
    # with the planted set given as an extra question one split per phone is enough
    res2 = build_tree(planted, q.add_phone_questions([(3, 4)]), silence_phones=[SIL], max_leaves=100,
                      thresh=200.0, min_count=20, cluster_thresh=0.0)
    assert res2.num_leaves == 8 and res2.num_splits == 2
    for ph in (1, 2):
        assert trig in list(_partition(res2.tree, ph).values())


def test_pdf_class_split_and_silence_unsplit(planted3):
    q = make_questions(planted3, seed=0)
    assert (0,) in q.pdf_class_questions and (0, 1) in q.pdf_class_questions
    res = build_tree(planted3, q, silence_phones=[SIL], num_pdf_classes=3, max_leaves=200, thresh=300.0,
                     min_count=20)
    tree = res.tree
    for ph in range(1, 6):
        leaves = [set(_partition(tree, ph, k)) for k in range(3)]
        assert not (leaves[0] & leaves[1]) and not (leaves[1] & leaves[2]), ph  # states separated
    # silence: one leaf per pdf-class, no context split, not shared between states
    sil = [_partition(tree, SIL, k) for k in range(3)]
    assert all(len(g) == 1 for g in sil)
    assert len({next(iter(g)) for g in sil}) == 3
    # phones 1, 2 (planted) have 2 leaves for at least one state; 3..5 exactly one leaf per state
    for ph in (3, 4, 5):
        assert all(len(_partition(tree, ph, k)) == 1 for k in range(3))
    assert any(len(_partition(tree, 1, k)) == 2 for k in range(3))


def test_max_leaves_respected_and_data_limit_logged(planted, caplog):
    q = make_questions(planted)
    res = build_tree(planted, q, silence_phones=[SIL], max_leaves=7, thresh=0.0, min_count=1,
                     cluster_thresh=0.0)
    assert res.num_leaves_split == 7 and res.num_leaves == 7 and not res.data_limited
    with caplog.at_level(logging.WARNING, logger="asrkit.tree.build"):
        res = build_tree(planted, q, silence_phones=[SIL], max_leaves=5000, thresh=200.0, min_count=20)
    assert res.data_limited and res.num_leaves_split < 5000
    assert any("support only" in r.getMessage() for r in caplog.records)
    # fewer leaves asked than roots: no split at all, and it says so
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asrkit.tree.build"):
        res = build_tree(planted, q, silence_phones=[SIL], max_leaves=3)
    assert res.num_splits == 0 and res.num_leaves == 6
    assert any("fewer than the 6 leaves of the roots" in r.getMessage() for r in caplog.records)


def test_min_count_respected(planted):
    q = make_questions(planted)
    for mc in (50.0, 400.0):
        res = build_tree(planted, q, silence_phones=[SIL], max_leaves=300, thresh=0.0, min_count=mc,
                         cluster_thresh=0.0)
        assert res.num_leaves > 6
        assert res.pdf_counts.min() >= mc, (mc, res.pdf_counts.min())


def test_clustering_merges_and_renumbers(planted):
    q = make_questions(planted)
    no_cl = build_tree(planted, q, silence_phones=[SIL], max_leaves=60, thresh=0.0, min_count=20,
                       cluster_thresh=0.0)
    cl = build_tree(planted, q, silence_phones=[SIL], max_leaves=60, thresh=0.0, min_count=20,
                    cluster_thresh=1e9)
    assert no_cl.num_leaves == 60
    # with a huge threshold every root collapses to one leaf per root
    assert cl.num_leaves == 6 and cl.cluster_objf_change < 0
    assert cl.tree.num_pdfs == 6
    d = build_tree(planted, q, silence_phones=[SIL], max_leaves=60, thresh=0.0, min_count=20)
    assert d.cluster_thresh == pytest.approx(d.smallest_split)  # Kaldi's default
    assert d.num_leaves <= 60


def test_deterministic(planted):
    a = build_tree(planted, make_questions(planted, seed=3), silence_phones=[SIL], max_leaves=40,
                   thresh=0.0, min_count=10)
    b = build_tree(planted, make_questions(planted, seed=3), silence_phones=[SIL], max_leaves=40,
                   thresh=0.0, min_count=10)
    assert context_dependency_bytes(a.tree) == context_dependency_bytes(b.tree)


def test_vectorised_gain_matches_brute_force(planted):
    q = make_questions(planted)
    cfg = TreeBuildConfig(min_count=1.0)
    ev = _Evaluator(planted, q, cfg)
    rows = np.flatnonzero(planted.central_phones == 1)
    gain, key, yes_set = ev.best_split(rows)
    best = -np.inf
    c, s, ss = planted.counts[rows], planted.sums[rows], planted.sumsqs[rows]
    tot = gauss_objf(c.sum(), s.sum(0), ss.sum(0))
    for k in (0, 1, 2, -1):
        v = planted.pdf_classes[rows] if k == -1 else planted.contexts[rows, k]
        for qs in q.for_key(k):
            m = np.isin(v, qs)
            if m.all() or not m.any():
                continue
            g = (gauss_objf(c[m].sum(), s[m].sum(0), ss[m].sum(0))
                 + gauss_objf(c[~m].sum(), s[~m].sum(0), ss[~m].sum(0)) - tot)
            best = max(best, g)
    assert gain == pytest.approx(best, rel=1e-9)
    assert key == 2  # the planted effect is on the right context


def test_cluster_phones_finds_groups():
    rng = np.random.default_rng(0)
    from asrkit.tree.stats import TreeStats
    # phones 1-3 near one mean, 4-6 near another
    means = np.array([[0, 0], [0, 0.1], [0.1, 0], [0, -0.1], [8, 8], [8.1, 8], [8, 8.2]])
    ctx = np.array([[0, p, 0] for p in range(1, 7)])
    counts = np.full(6, 100.0)
    sums = counts[:, None] * means[1:]
    sumsqs = counts[:, None] * (means[1:] ** 2 + 1.0)
    st = TreeStats(3, 1, ctx, np.zeros(6), counts, sums, sumsqs)
    qs = cluster_phones(st, seed=0)
    assert qs[0] == (1, 2, 3, 4, 5, 6)
    assert (1, 2, 3) in qs and (4, 5, 6) in qs
    assert all((p,) in qs for p in range(1, 7))
    assert len(qs) == 11  # a full binary tree over 6 items
    # phone sets are clustered as units
    qs = cluster_phones(st, [(1, 2), (3,), (4, 5), (6,)])
    assert (1, 2, 3) in qs and (1, 2) in qs and (1,) not in qs


def test_roots_spec_and_errors(planted):
    roots = read_roots("shared split 1 2\nshared split 3\nshared split 4\nshared split 5\n"
                       "not-shared not-split 6\n")
    assert roots[0].phones == (1, 2) and not roots[-1].split
    q = make_questions(planted)
    res = build_tree(planted, q, roots, max_leaves=100, thresh=200.0, min_count=20)
    # phones 1 and 2 share a root: their leaves are shared (same effect planted, different means:
    # the central-phone question separates them)
    assert res.tree.map((0, 1, 3), 0) != res.tree.map((0, 2, 3), 0)
    with pytest.raises(ValueError, match="no root"):
        build_tree(planted, q, roots[:-1])
    with pytest.raises(ValueError, match="expected"):
        read_roots("shared 1 2\n")
    with pytest.raises(ValueError, match="not-shared"):
        RootSpec((1,), shared=False, split=True)
    assert Questions([(2, 1), (1, 2)], []).phone_questions == [(1, 2)]


def test_monophone_statistics_split_only_on_pdf_class():
    phones, pdfs, feats, lengths, starts = make_planted_frames(num_utts=100, num_pdf_classes=3, seed=4)
    st = accumulate_tree_stats(phones, pdfs, feats, context_width=1, central_position=0,
                               phone_starts=starts, utt_lengths=lengths)
    res = build_tree(st, make_questions(st), silence_phones=[SIL], max_leaves=1000, thresh=100.0,
                     min_count=10)
    # 5 speech phones x 3 states + silence's 3: one leaf per (phone, state), nothing else to split on
    assert res.num_leaves == 18 and res.data_limited
    tree = res.tree
    assert len({tree.map((ph,), k) for ph in range(1, 7) for k in range(3)}) == 18
