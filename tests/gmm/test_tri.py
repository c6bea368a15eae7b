"""Triphone system from the monophone alignments: tree, convert-ali, EM, final alignments; decoding."""
from __future__ import annotations

import numpy as np
import pytest

from asrkit.fst import kaldi_hmm_gmm
from asrkit.gmm import (AlignmentConverter, GmmModel, LangInfo, TriConfig, alignment_segments, load_alignments,
                        train_tri)
from asrkit.gmm.model import gmm_params
from asrkit.utils.atomic import is_done


def test_convert_alignment_to_same_tree_is_identity(mono_system):
    model, out = mono_system
    ali = load_alignments(out)["alis"]
    conv = AlignmentConverter(model.info, model.transition_model, model.tree)
    for u, a in list(ali.items())[:5]:
        assert np.array_equal(conv.convert(a), a)


def test_tri_with_given_tree(mono_system, toy_data, tmp_path):
    """A caller-supplied ContextDependency (here the monophone one) instead of asrkit.tree."""
    model, out = mono_system
    topo = model.topo
    tree = kaldi_hmm_gmm.monophone_context_dependency(topo.phones, topo.get_phone_to_num_pdf_classes())
    tri = train_tri(toy_data["corpus"], toy_data["lang"], tmp_path / "tri", out,
                    TriConfig(num_iters=4, tot_gauss=150, realign_iters=[2]), tree=tree)
    assert tri.num_pdfs == model.num_pdfs and is_done(tmp_path / "tri" / "final.mdl")


def test_tri_trains_and_aligns(mono_system, toy_data, tmp_path):
    pytest.importorskip("asrkit.tree.build")
    model, out = mono_system
    d = tmp_path / "tri"
    tri = train_tri(toy_data["corpus"], toy_data["lang"], d, out,
                    TriConfig(num_leaves=90, tot_gauss=300, num_iters=8, realign_iters=[3, 6],
                              tree_min_count=20, nj=2))
    assert tri.tree.context_width == 3 and tri.tree.central_position == 1
    assert model.num_pdfs < tri.num_pdfs <= 90 + 6
    hist = tri.meta["history"]
    assert [h["iter"] for h in hist] == list(range(1, 8))
    assert hist[-1]["loglike_per_frame"] > hist[0]["loglike_per_frame"]
    assert [h["realigned"] for h in hist] == [x in (3, 6) for x in range(1, 8)]
    for name in ("final.mdl", "tree", "tree_stats.npz", "ali.pt", "history.json", "failed.txt"):
        assert (d / name).exists(), name
    # a rerun from the same monophone system gives the same model, bit for bit (seeded mixing-up)
    again = train_tri(toy_data["corpus"], toy_data["lang"], tmp_path / "again", out,
                      TriConfig(num_leaves=90, tot_gauss=300, num_iters=8, realign_iters=[3, 6],
                                tree_min_count=20, nj=2))
    flat = [np.concatenate([a.ravel() for p in gmm_params(m.am) for a in p]) for m in (tri, again)]
    np.testing.assert_array_equal(flat[0], flat[1])
    ali = load_alignments(d)
    toy = toy_data["toy"]
    assert set(ali["alis"]) == set(toy.text) and not ali["failed"]
    lang = LangInfo.read(toy_data["lang"])
    id2p = {i: p for p, i in lang.phones.items()}
    for u, a in ali["alis"].items():
        ph = [p for p, _, _ in alignment_segments(a, tri.info, id2p, skip=lang.silence)]
        assert ph == [x for w in toy.text[u] for x in toy.lexicon[w].split()]
    # the stored tree file is Kaldi's binary layout of the model's tree
    data = (d / "tree").read_bytes()
    assert data.startswith(b"\x00BContextDependency")
    assert GmmModel.load(d / "final.mdl").num_pdfs == tri.num_pdfs


def test_decode_with_mono(mono_system, toy_data, tmp_path):
    from asrkit.gmm.decode import GmmScorer, best_wer_line, decode_gmm, make_graph
    from asrkit.testing.digits import WORDS
    from asrkit.testing.lang import write_toy_word_loop_grammar

    model, _ = mono_system
    g = write_toy_word_loop_grammar(toy_data["lang"], WORDS, tmp_path / "G.fst")
    graph = make_graph(model, toy_data["lang"], g, tmp_path / "graph")
    c = toy_data["corpus"]
    feats = {u: c.feats[u] for u in c.utts[:12]}
    results = decode_gmm(model, graph, feats, {u: c.text[u] for u in feats}, tmp_path / "decode",
                         lm_weights="8,12", nj=2)
    assert set(results) == {8.0, 12.0}
    assert min(r.wer for r in results.values()) < 25.0, best_wer_line(tmp_path / "decode")
    assert best_wer_line(tmp_path / "decode").startswith("%WER")
    assert len((tmp_path / "decode" / "hyp.txt").read_text().splitlines()) == 12


def test_gmm_scorer_matches_kaldi(mono_system, toy_data):
    """The vectorised log-likelihoods equal kaldi's DiagGmm.log_likelihood for every pdf."""
    from asrkit.gmm.decode import GmmScorer

    model, _ = mono_system
    feats = toy_data["corpus"].feats[toy_data["corpus"].utts[0]][:20]
    ours = GmmScorer(model.am)(feats)
    for pdf in range(0, model.am.num_pdfs, max(1, model.am.num_pdfs // 7)):
        gmm = model.am.get_pdf(pdf)
        ref = [gmm.log_likelihood(np.ascontiguousarray(f, dtype=np.float32)) for f in feats]
        np.testing.assert_allclose(ours[:, pdf], ref, rtol=1e-4, atol=1e-2)


def test_tri_tree_agrees_with_alignments_and_convert_ali(mono_system, toy_data, tmp_path):
    """Guards the triphone invariants: (1) convert-ali of the monophone alignments to a real triphone tree
    keeps every frame's phone, HMM state and self-loop flag; (2) for every frame of the converted and the
    final triphone alignments, the Kaldi tree asked with the frame's (left, centre, right) context (0 at
    utterance edges) and the pdf-class of its transition id gives the transition id's pdf."""
    pytest.importorskip("asrkit.tree.build")
    from asrkit.gmm.train_tri import frame_contexts

    model, out = mono_system
    d = tmp_path / "tri"
    tri = train_tri(toy_data["corpus"], toy_data["lang"], d, out,
                    TriConfig(num_leaves=90, tot_gauss=200, num_iters=3, realign_iters=[2], tree_min_count=20))
    assert tri.tree.context_width == 3 and tri.tree.central_position == 1 and tri.num_pdfs > model.num_pdfs
    mono_ali = load_alignments(out)["alis"]
    conv = AlignmentConverter(model.info, tri.transition_model, tri.tree)
    mi, ti = model.info, tri.info

    def contexts(a, info):  # computed here, independently of the code under test
        starts = [t for t in range(len(a)) if t == 0 or (info.hmm_state[a[t]] == 0 and not info.is_self_loop[a[t]])]
        phones = [int(info.phone[a[t]]) for t in starts]
        out = np.zeros((len(a), 3), dtype=np.int64)
        for k, (b, e) in enumerate(zip(starts, starts[1:] + [len(a)])):
            out[b:e] = [phones[k - 1] if k > 0 else 0, phones[k], phones[k + 1] if k + 1 < len(phones) else 0]
        return out

    # (0) the tree statistics are keyed by (left, centre, right) and pdf-class, silence context-free
    from collections import Counter

    from asrkit.tree.stats import TreeStats

    sil = set(LangInfo.read(toy_data["lang"]).silence)
    want = Counter()
    for u, a in mono_ali.items():
        a = np.asarray(a, dtype=np.int64)
        for (l, c, r), pc in zip(contexts(a, mi).tolist(), mi.pdf_class[a].tolist()):
            want[(0, c, 0, pc) if c in sil else (l, c, r, pc)] += 1
    st = TreeStats.load(d / "tree_stats.npz")
    got = {(*map(int, x), int(pc)): float(n) for x, pc, n in zip(st.contexts, st.pdf_classes, st.counts)}
    assert got == {k: float(v) for k, v in want.items()}

    def check_tree(a):
        ctx = contexts(a, ti)
        assert np.array_equal(ctx, frame_contexts(a, ti, 3, 1))
        for t in range(len(a)):
            ok, pdf = tri.tree.compute([int(v) for v in ctx[t]], int(ti.pdf_class[a[t]]))
            assert ok and pdf == ti.pdf[a[t]], (t, ctx[t])
        assert ctx[0, 0] == 0 and ctx[-1, 2] == 0  # utterance edges

    for u, a in list(mono_ali.items())[:8]:
        a = np.asarray(a, dtype=np.int64)
        c = np.asarray(conv.convert(a), dtype=np.int64)
        assert np.array_equal(mi.phone[a], ti.phone[c])
        assert np.array_equal(mi.hmm_state[a], ti.hmm_state[c])
        assert np.array_equal(mi.is_self_loop[a], ti.is_self_loop[c])
        check_tree(c)
    for u, a in list(load_alignments(d)["alis"].items())[:8]:
        check_tree(np.asarray(a, dtype=np.int64))
