"""Alignment failures, retries and the batched accumulator against Kaldi's per-frame one."""
from __future__ import annotations

import numpy as np
import pytest

from asrkit.fst import kaldi_hmm_gmm
from asrkit.gmm import (AlignOptions, Corpus, GmmStats, UpdateConfig, accumulate, align_corpus, load_alignments,
                        update_model)
from asrkit.gmm.model import gmm_params


def test_failures_are_counted_and_reported(mono_system, toy_data):
    model, _ = mono_system
    c = toy_data["corpus"]
    utts = c.utts[:6]
    text = {u: list(c.text[u]) for u in utts}
    feats = {u: c.feats[u] for u in utts}
    text[utts[0]] = ["seven"] * 40  # far too many words for its frames
    feats[utts[1]] = feats[utts[1]][:8]  # far too few frames
    text[utts[2]] = ["<UNK>"]  # wrong transcript: aligns only with a wide beam, or not at all
    bad = Corpus(feats, text, {})
    res = align_corpus(model, bad, toy_data["lang"], AlignOptions(beam=1.0, retry_beam=40.0))
    assert utts[0] in res.failed and "too short" in res.failed[utts[0]]
    assert utts[1] in res.failed and "too short" in res.failed[utts[1]]
    assert set(res.alis) | set(res.failed) == set(utts)
    assert len(res.retried) >= 1
    for u in utts[3:]:
        assert u in res.alis or u in res.retried
    res0 = align_corpus(model, bad, toy_data["lang"], AlignOptions(beam=1.0, retry_beam=0.0))
    # without a retry beam, what needed the retry now fails, with its reason
    for u in res.retried:
        if u in res.alis:
            assert u in res0.failed and "no final state" in res0.failed[u]
    assert len(res0.failed) == len(res.failed) + len([u for u in res.retried if u in res.alis])


def test_batched_accumulation_matches_kaldi(mono_system, toy_data):
    model, out = mono_system
    ali = load_alignments(out)["alis"]
    c = toy_data["corpus"]
    utts = c.utts[:5]
    st = GmmStats.zeros(gmm_params(model.am), model.transition_model.num_transition_ids)
    accumulate(st, gmm_params(model.am), model.info.pdf, [c.feats[u] for u in utts], [ali[u] for u in utts])
    acc = kaldi_hmm_gmm.AccumAmDiagGmm()
    acc.init(model.am, kaldi_hmm_gmm.GmmUpdateFlags.kGmmAll)
    tot = 0.0
    for u in utts:
        for f, t in zip(c.feats[u], ali[u]):
            tot += acc.accumulate_for_gmm(model.am, f, int(model.info.pdf[t]), 1.0)
    assert st.frames == sum(len(c.feats[u]) for u in utts) == int(acc.tot_count)
    assert st.loglike == pytest.approx(tot, rel=1e-5)
    for p in range(model.num_pdfs):
        a = acc.get_acc(p)
        np.testing.assert_allclose(st.occ[p], a.occupancy, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(st.x[p], a.mean_accumulator, rtol=1e-4, atol=1e-2)
        np.testing.assert_allclose(st.x2[p], a.variance_accumulator, rtol=1e-4, atol=1e-1)
    # the numpy update gives Kaldi's MleAmDiagGmmUpdate; the occupancy threshold is put where no Gaussian's
    # occupancy is within float32 noise of it, or the two could keep and remove different Gaussians
    occs = np.concatenate(st.occ)
    thr = 10.0
    while np.abs(occs - thr).min() < 0.05:
        thr += 0.1
    x = c.feats[utts[0]][10]
    for remove in (True, False):  # Gaussians with too little data removed, or kept with a floored weight
        m1, m2 = model.copy(), model.copy()
        update_model(m1, st, UpdateConfig(update_transitions=False, min_gaussian_occupancy=thr,
                                          remove_low_count_gaussians=remove))
        opts = kaldi_hmm_gmm.MleDiagGmmOptions()
        opts.min_gaussian_occupancy = thr
        opts.remove_low_count_gaussians = remove
        kaldi_hmm_gmm.mle_am_diag_gmm_update(opts, acc, kaldi_hmm_gmm.GmmUpdateFlags.kGmmAll, m2.am)
        assert m1.num_gauss == m2.num_gauss
        assert (m1.num_gauss < model.num_gauss) == remove
        for p in range(model.num_pdfs):
            assert m1.am.log_likelihood(p, x) == pytest.approx(m2.am.log_likelihood(p, x), rel=1e-3, abs=1e-2)


def test_align_scores_is_the_gmm_search_with_another_likelihood(mono_system, toy_data):
    """align_scores over the GMM's own per-pdf log-likelihoods (read from its decodable) finds the very
    alignment align_utterance finds: one search, two likelihood sources."""
    from asrkit.gmm import GraphCompiler, LangInfo, align_scores, align_utterance

    model, _ = mono_system
    c = toy_data["corpus"]
    lang = LangInfo.read(toy_data["lang"])
    opts = AlignOptions()
    tid2pdf = model.info.pdf
    first_tid = {int(p): t for t, p in reversed(list(enumerate(tid2pdf))) if t > 0}
    for u in c.utts[:4]:
        feats = np.ascontiguousarray(c.feats[u], dtype=np.float32)
        graph = GraphCompiler(model, lang).compile(c.text[u], u)
        dec = kaldi_hmm_gmm.DecodableAmDiagGmmScaled(model.am, model.transition_model, feats, 1.0)
        scores = np.array([[dec.log_likelihood(t, first_tid[p]) for p in range(model.num_pdfs)]
                           for t in range(len(feats))], dtype=np.float32)
        a1, _, like1, _ = align_utterance(model.am, model.transition_model, graph, feats, opts, u)
        a2, reason, like2, _ = align_scores(model.transition_model, tid2pdf, graph, scores, opts, u)
        assert a1 is not None and a2 is not None, reason
        np.testing.assert_array_equal(a1, a2)
        assert like2 == pytest.approx(like1, rel=1e-4)


def test_align_scores_follows_oracle_scores_and_reports_failures(tmp_path):
    """Scores peaked on an oracle path's pdfs give back that path's pdf sequence; a transcript too long for
    the frames fails with its reason; scores of the wrong width are refused."""
    from asrkit.gmm import GraphCompiler, LangInfo, align_scores
    from asrkit.hmm import TransitionInfo
    from asrkit.testing.lang import TOY_LEXICON, write_toy_lang_dir
    from asrkit.testing.oracle import make_oracle_alignment, make_oracle_scores, make_toy_model

    lang_dir = write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON, num_states=1)
    model = make_toy_model(lang_dir, context_width=3)
    tid2pdf = TransitionInfo.from_model(model.transition_model).pdf
    num_pdfs = int(model.transition_model.num_pdfs)
    compiler = GraphCompiler(model, LangInfo.read(lang_dir))
    for i, sentence in enumerate(["yes no", "nope yes yes"]):
        tids = make_oracle_alignment(model, lang_dir, sentence, 40, seed=i)
        scores = make_oracle_scores(tid2pdf, tids, num_pdfs, off=-30.0, seed=i)
        ali, reason, _, _ = align_scores(model.transition_model, tid2pdf, compiler.compile(sentence.split()),
                                         scores, AlignOptions())
        assert ali is not None, reason
        np.testing.assert_array_equal(tid2pdf[ali], tid2pdf[np.asarray(tids)])
    ali, reason, _, _ = align_scores(model.transition_model, tid2pdf, compiler.compile(["yes"] * 30),
                                     np.zeros((10, num_pdfs), np.float32), AlignOptions())
    assert ali is None and "too short" in reason
    with pytest.raises(ValueError, match="do not cover"):
        align_scores(model.transition_model, tid2pdf, compiler.compile(["yes"]), np.zeros((10, 1), np.float32),
                     AlignOptions())
