"""The tiny espeak digit system of the senone tests: corpus, features, lang dirs, G and a mono -> tri GMM
(module scope in each test file that uses it)."""
from __future__ import annotations

import pytest

from asrkit.lang.g2p import have_espeak
from asrkit.testing import digits
from asrkit.testing import lang as toy_lang


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """Tiny espeak digits: train_sup (20 utts) and dev (6: one with an unknown word, one whose transcript
    is far too long for its audio), MFCC + fbank + CMVN, lang (3 states) and lang_senone (1 state), a
    word-loop G, and a quick mono -> tri GMM system."""
    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    from lhotse import CutSet

    from asrkit.features import compute_cmvn, compute_features
    from asrkit.gmm import MonoConfig, TriConfig, load_corpus, train_mono, train_tri

    d = tmp_path_factory.mktemp("senone")
    tr = digits.make_digit_corpus(20, voices=digits.VOICES[:3], seed=0, prefix="tr")
    dv = digits.make_digit_corpus(6, voices=digits.VOICES[:3], seed=1, prefix="dv")
    dv.text["dv0001"] = dv.text["dv0001"] + ["banana"]
    dv.text["dv0002"] = ["seven"] * 60
    lang = toy_lang.write_toy_lang_dir(d / "lang", tr.lexicon)
    lang_senone = toy_lang.write_toy_lang_dir(d / "lang_senone", tr.lexicon, num_states=1)
    for name, c in (("train_sup", tr), ("dev", dv)):
        mf = digits.write_digit_cuts(d / "mfcc", c, name)
        cuts = CutSet.from_cuts([x.drop_features() for x in CutSet.from_file(mf)])
        compute_features(cuts, d / "fbank", name, kind="fbank", progress_bar=False)
    compute_cmvn(d / "fbank" / "cuts_train_sup.jsonl.gz", d / "cmvn.npz", progress_bar=False)
    g = toy_lang.write_toy_word_loop_grammar(lang, digits.WORDS, d / "G.fst")
    corpus = load_corpus(d / "mfcc" / "cuts_train_sup.jsonl.gz")
    train_mono(corpus, lang, d / "mono", MonoConfig(num_iters=8, tot_gauss=120, nj=2))
    train_tri(corpus, lang, d / "tri", d / "mono",
              TriConfig(num_leaves=50, tot_gauss=150, num_iters=4, realign_iters=[2], tree_min_count=20, nj=2))
    return {"d": d, "lang": lang, "lang_senone": lang_senone, "G": g}
