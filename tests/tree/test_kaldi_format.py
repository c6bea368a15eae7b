"""Kaldi's binary tree format: kaldi-hmm-gmm loads our trees and maps every context as Python does."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from asrkit.fst import kaldi_hmm_gmm
from asrkit.hmm import read_tree, write_tree
from asrkit.tree import (ConstantNode, ContextTree, SplitNode, TableNode, accumulate_tree_stats, build_tree,
                         context_dependency_bytes, context_tree_from_bytes, kaldi_to_tree, make_questions,
                         monophone_context_tree, to_kaldi)
from asrkit.testing.tree import make_planted_frames

SIL = 6


def topology(phones, num_states):
    states = []
    for s in range(num_states):
        states.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
    states.append(f"<State> {num_states} </State>")
    text = ("<Topology>\n<TopologyEntry>\n<ForPhones>\n" + " ".join(map(str, phones))
            + "\n</ForPhones>\n" + "\n".join(states) + "\n</TopologyEntry>\n</Topology>\n")
    topo = kaldi_hmm_gmm.HmmTopology()
    topo.read(text)
    return topo


def _built(num_pdf_classes, seed):
    phones, pdfs, feats, lengths, starts = make_planted_frames(num_utts=300, num_pdf_classes=num_pdf_classes,
                                                               seed=seed)
    st = accumulate_tree_stats(phones, pdfs, feats, phone_starts=starts, utt_lengths=lengths)
    return build_tree(st, make_questions(st), silence_phones=[SIL], num_pdf_classes=num_pdf_classes,
                      max_leaves=60, thresh=0.0, min_count=10)


@pytest.mark.parametrize("num_pdf_classes", [1, 3])
def test_kaldi_maps_every_context_like_python(tmp_path, num_pdf_classes):
    res = _built(num_pdf_classes, seed=num_pdf_classes)
    tree = res.tree
    assert res.num_leaves > 20
    path = tmp_path / "exp" / "tree"
    write_tree(to_kaldi(tree), path)
    assert path.read_bytes() == b"\x00B" + context_dependency_bytes(tree)  # our serialiser's bytes, header first
    cd = read_tree(path)
    assert (cd.context_width, cd.central_position) == (3, 1)
    assert cd.num_pdfs == res.num_leaves
    contexts, classes, expected = [], [], []
    for l, c, r in itertools.product(range(7), range(7), range(7)):
        for k in range(num_pdf_classes):
            ok, pdf = cd.compute([l, c, r], k)
            if c == 0:
                assert not ok
                with pytest.raises(KeyError):
                    tree.map((l, c, r), k)
                continue
            assert ok and pdf == tree.map((l, c, r), k), (l, c, r, k)
            contexts.append((l, c, r))
            classes.append(k)
            expected.append(pdf)
    np.testing.assert_array_equal(tree.map_batch(np.array(contexts), np.array(classes)), expected)
    # every leaf is reachable, numbered 0..num_pdfs-1
    assert set(expected) == set(range(res.num_leaves))
    # a transition model built from the loaded tree has one pdf per leaf
    tm = kaldi_hmm_gmm.TransitionModel(cd, topology(range(1, 7), num_pdf_classes))
    assert tm.num_pdfs == res.num_leaves
    ok, pdfs = kaldi_hmm_gmm.get_pdfs_for_phones(tm, [SIL])
    assert ok and len(pdfs) == num_pdf_classes  # silence: one pdf per state, no context split
    # read back into Python, and out of kaldi_hmm_gmm, byte for byte
    data = context_dependency_bytes(tree)
    assert context_dependency_bytes(context_tree_from_bytes(path.read_bytes(), str(path))) == data
    assert context_dependency_bytes(kaldi_to_tree(cd)) == data
    kaldi_written = tmp_path / "tree.kaldi"
    cd.write(True, str(kaldi_written))
    assert kaldi_written.read_bytes() == path.read_bytes()


def test_monophone_tree_matches_kaldi():
    ours = monophone_context_tree([1, 2, 3], [0, 3, 3, 1])
    ref = kaldi_hmm_gmm.monophone_context_dependency([1, 2, 3], [0, 3, 3, 1])
    assert context_dependency_bytes(ours) == bytes(b & 0xFF for b in ref.__getstate__()[0])
    shared = monophone_context_tree(None, {1: 3, 2: 3, 3: 1}, shared_sets=[[1, 2], [3]])
    ref = kaldi_hmm_gmm.monophone_context_dependency_shared([[1, 2], [3]], [0, 3, 3, 1])
    cd = to_kaldi(shared)
    for ph, k in [(1, 0), (1, 2), (2, 1), (3, 0)]:
        assert cd.compute([ph], k) == ref.compute([ph], k) == (True, shared.map((ph,), k))
    assert cd.num_pdfs == 4
    # a triphone-shaped stand-in: context ignored
    tri = monophone_context_tree([1, 2, 3], 1, context_width=3)
    cd = to_kaldi(tri)
    assert cd.compute([2, 1, 3], 0) == (True, 0) and cd.compute([0, 3, 0], 0) == (True, 2)
    tm = kaldi_hmm_gmm.TransitionModel(cd, topology([1, 2, 3], 1))
    assert tm.num_pdfs == 3


def test_deep_tree_round_trip():
    # a chain 2000 splits deep: beyond Python's recursion limit
    depth = 2000
    node = ConstantNode(depth)
    for i in reversed(range(depth)):
        node = SplitNode(2, (i % 5 + 1,), ConstantNode(i), node) if i % 2 else SplitNode(0, (1, 2), node,
                                                                                          ConstantNode(i))
    tree = ContextTree(3, 1, TableNode(1, [None, node, ConstantNode(depth + 1)]))
    data = context_dependency_bytes(tree)
    back = context_tree_from_bytes(data)
    assert context_dependency_bytes(back) == data
    cd = to_kaldi(tree)
    for ctx in [(1, 1, 3), (3, 1, 2), (4, 1, 5), (0, 2, 0)]:
        assert cd.compute(list(ctx), 0) == (True, tree.map(ctx, 0))


def test_bad_tree_file(tmp_path):
    p = tmp_path / "tree"
    p.write_bytes(b"\x00BContextDependency \x04\x03\x00\x00\x00\x04\x01\x00\x00\x00ToPdf XX ")
    with pytest.raises(ValueError, match="unexpected token"):
        context_tree_from_bytes(p.read_bytes(), str(p))
    p.write_bytes(b"\x00B<ContextDependency> 3 1 ToPdf")  # a text tree
    with pytest.raises(ValueError, match=f"{p}: not a binary Kaldi ContextDependency"):
        read_tree(p)


def test_frame_pdfs_match_kaldi_compute():
    res = _built(1, seed=5)
    phones, pdfs, feats, lengths, starts = make_planted_frames(num_utts=20, seed=9)
    got = res.tree.frame_pdfs(phones, pdfs, phone_starts=starts, utt_lengths=lengths)
    cd = to_kaldi(res.tree)
    t = 0
    for n in lengths:
        seq = [int(phones[i]) for i in range(t, t + n) if i == t or starts[i]]
        i_seg = -1
        for i in range(t, t + n):
            if i == t or starts[i]:
                i_seg += 1
            ctx = [seq[i_seg - 1] if i_seg > 0 else 0, seq[i_seg], seq[i_seg + 1] if i_seg + 1 < len(seq) else 0]
            assert cd.compute(ctx, int(pdfs[i])) == (True, int(got[i]))
        t += n
