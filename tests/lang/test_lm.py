"""N-gram LMs: kaldingram training, strict ARPA reading, perplexity, G.fst with kaldilm."""
from __future__ import annotations

import math
import random

import pytest

from asrkit.fst import kaldifst
from asrkit.lang.lang_dir import SymbolTable, make_word_table
from asrkit.lang.lm import (
    ArpaError, LmConfig, add_unigrams, arpa_to_fst, arpa_to_fst_text, build_lm, kaldingram_ppl, perplexity, read_arpa,
    train_arpa, write_arpa,
)

TINY_ARPA = """\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-99\t<s>\t-0.5
-0.5\tA\t-0.3
-0.6\tB\t-0.3
-0.4\t</s>

\\2-grams:
-0.2\t<s> A
-0.3\tA B

\\end\\
"""

WORDS = ["THE", "CAT", "DOG", "SAT", "RAN", "ON", "MAT", "LOG", "A", "AWAY"]


def corpus(n=200, seed=0):
    rng = random.Random(seed)
    return [[rng.choice(["THE", "A"]), rng.choice(["CAT", "DOG"]), rng.choice(["SAT", "RAN"]),
             *rng.choice([["ON", "THE", rng.choice(["MAT", "LOG"])], ["AWAY"]])] for _ in range(n)]


def words_txt(tmp_path, words):
    p = tmp_path / "words.txt"
    p.write_text(make_word_table(["<UNK>"] + list(words)).to_text())
    return p


def test_tiny_arpa_parses_and_g_has_expected_arcs(tmp_path):
    arpa = tmp_path / "tiny.arpa"
    arpa.write_text(TINY_ARPA)
    m = read_arpa(arpa)
    assert m.counts == {1: 4, 2: 2} and m.vocab() == {"<s>", "A", "B", "</s>"}
    assert m.logprob("B", ["A"]) == pytest.approx(-0.3)
    assert m.logprob("A", ["B"]) == pytest.approx(-0.3 - 0.5)  # back-off(B) + P(A)
    wt = words_txt(tmp_path, ["A", "B"])
    g, st = arpa_to_fst(arpa, wt, tmp_path / "G.fst")
    # states: unigram history, <s>, A, B (</s> is a final weight); arcs: 2 bigrams, 2 unigrams from the
    # unigram state... kaldilm writes words from the back-off state (A, B), bigrams (<s> A, A B), and a
    # #0 back-off arc from each of <s>, A, B
    assert st.states == 4
    assert st.arcs == 7
    assert g.is_ilabel_sorted
    words = SymbolTable.read(wt)
    labels = {int(l.split()[2]) for l in arpa_to_fst_text(arpa, wt).splitlines() if len(l.split()) >= 4}
    assert labels == {words["A"], words["B"], words["#0"]}  # no <s>/</s> on arcs
    g2 = kaldifst.StdVectorFst.read(str(tmp_path / "G.fst"))
    assert g2.num_states == 4


@pytest.mark.parametrize(
    "text,match",
    [
        (TINY_ARPA.replace("-0.3\tA B", "-0.3\tA B C D"), r"broken.arpa:13: a 2-gram line"),
        (TINY_ARPA.replace("ngram 2=2", "ngram 2=3"), r"ngram 2=3 but the 2-grams section has 2"),
        (TINY_ARPA.replace("\\end\\\n", ""), r"missing \\end\\"),
        (TINY_ARPA.replace("-0.6\tB", "x.y\tB"), r"broken.arpa:8: not a number"),
        ("hello world\n", r"broken.arpa:1: expected \\data\\ first"),
    ],
)
def test_broken_arpa_clear_error(tmp_path, text, match):
    arpa = tmp_path / "broken.arpa"
    arpa.write_text(text)
    with pytest.raises(ArpaError, match=match):
        read_arpa(arpa)
    with pytest.raises(ArpaError, match="broken.arpa"):
        arpa_to_fst(arpa, words_txt(tmp_path, ["A", "B"]))


def test_kaldilm_abort_becomes_an_error(tmp_path):
    arpa = tmp_path / "bad.arpa"
    arpa.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-99\t<s>\nfoo bar baz qux\n\\end\\\n")
    with pytest.raises(ArpaError, match="kaldilm.arpa2fst failed on .*bad.arpa"):
        arpa_to_fst_text(arpa, words_txt(tmp_path, ["A"]))


def test_train_perplexity_and_g(tmp_path):
    train = corpus(200)
    (tmp_path / "train.txt").write_text("".join(" ".join(s) + "\n" for s in train))
    m = train_arpa(tmp_path / "train.txt", tmp_path / "lm.arpa", LmConfig(order=3))
    assert m.order == 3 and m.counts[1] == len(WORDS) + 2
    ppl_train = perplexity(m, corpus(50, seed=1))
    rng = random.Random(2)
    rand = [[rng.choice(WORDS) for _ in range(6)] for _ in range(50)]
    ppl_rand = perplexity(m, rand)
    assert math.isfinite(ppl_train.ppl) and math.isfinite(ppl_rand.ppl)
    assert ppl_train.ppl < 5 < ppl_rand.ppl
    # matches kaldingram's own perplexity
    (tmp_path / "dev.txt").write_text("".join(" ".join(s) + "\n" for s in corpus(50, seed=1)))
    assert f"ppl= {ppl_train.ppl:.4f}" in kaldingram_ppl(tmp_path / "lm.arpa", tmp_path / "dev.txt")
    # OOVs are counted, not scored
    r = perplexity(m, [["THE", "ZEBRA", "SAT"]])
    assert r.oovs == 1 and r.words == 3 and math.isfinite(r.ppl)
    # pruning shrinks the model
    pruned = train_arpa(tmp_path / "train.txt", tmp_path / "lm_p.arpa", LmConfig(order=3, prune_threshold=1e-2))
    assert pruned.num_ngrams() < m.num_ngrams()


def test_build_lm_outputs_and_markers(tmp_path):
    text = tmp_path / "text"
    text.write_text("".join(f"utt{i:03d} {' '.join(s)}\n" for i, s in enumerate(corpus(100))))
    dev = tmp_path / "dev_text"
    dev.write_text("d1 THE CAT SAT ON THE ZEBRA\nd2 A DOG RAN AWAY\n")
    wt = words_txt(tmp_path, [w for w in WORDS if w != "AWAY"])  # AWAY → <UNK> in training
    out = build_lm([text], tmp_path / "lm", LmConfig(order=2), wt, [dev])
    arpa = read_arpa(out["arpa"])
    assert out["arpa"].name == "lm_2gram.arpa" and "<UNK>" in arpa.vocab() and "AWAY" not in arpa.vocab()
    g = kaldifst.StdVectorFst.read(str(out["G"]))
    assert g.num_states > 1 and g.is_ilabel_sorted
    ppl = out["ppl"].read_text()
    assert "2 sentences, 10 words, 2 OOVs" in ppl
    assert (tmp_path / "lm" / ".G.fst.done").exists()
    mtime = out["G"].stat().st_mtime_ns
    build_lm([text], tmp_path / "lm", LmConfig(order=2), wt, [dev])
    assert out["G"].stat().st_mtime_ns == mtime


def _vocab_sum(m, history):
    """sum over the predictable vocabulary (everything but <s>) of P(w | history)."""
    return sum(10 ** m.logprob(w, history) for w in m.vocab() if w != "<s>")


def test_add_unigrams_keeps_the_model_normalised(tmp_path):
    (tmp_path / "train.txt").write_text("".join(" ".join(s) + "\n" for s in corpus(200)))
    m = train_arpa(tmp_path / "train.txt", tmp_path / "lm.arpa", LmConfig(order=3))
    histories = [[], ["<s>"], ["THE"], ["<s>", "THE"], ["THE", "CAT"], ["CAT", "SAT"], ["ON", "THE"]]
    for h in histories:  # kaldingram's model is normalised to begin with
        assert _vocab_sum(m, h) == pytest.approx(1.0, abs=1e-4)
    p_cat = m.logprob("CAT", ["THE"])
    added = add_unigrams(m, ["ZEBRA", "CAT", "YAK", "<s>"], 0.02)
    assert added == ["YAK", "ZEBRA"]
    assert m.logprob("ZEBRA", []) == pytest.approx(math.log10(0.01))
    assert m.logprob("YAK", ["THE", "CAT"]) < m.logprob("YAK", [])  # reached through the back-offs
    assert m.logprob("CAT", ["THE"]) == pytest.approx(p_cat)  # a seen bigram keeps its probability
    for h in histories:
        assert _vocab_sum(m, h) == pytest.approx(1.0, abs=1e-4)
    # written and read back: the same numbers, the counts updated
    write_arpa(m, tmp_path / "lm2.arpa")
    back = read_arpa(tmp_path / "lm2.arpa")
    assert back.counts[1] == len(WORDS) + 4
    assert back.logprob("ZEBRA", ["ON", "THE"]) == pytest.approx(m.logprob("ZEBRA", ["ON", "THE"]), abs=1e-6)
    with pytest.raises(ValueError, match="lexicon_unigram_mass"):
        add_unigrams(back, ["GNU"], 1.5)


def test_build_lm_gives_lexicon_words_missing_from_the_text_a_probability(tmp_path):
    """A lexicon word the LM text never saw (ZEBRA) gets a finite probability and an arc in G."""
    text = tmp_path / "text"
    text.write_text("".join(f"utt{i:03d} {' '.join(s)}\n" for i, s in enumerate(corpus(100))))
    wt = words_txt(tmp_path, WORDS + ["ZEBRA"])
    out = build_lm([text], tmp_path / "lm", LmConfig(order=2), wt)
    m = read_arpa(out["arpa"])
    assert math.isfinite(m.logprob("ZEBRA", ["THE"]))
    # ZEBRA and <UNK> (words.txt has it, the text never needed it) share the default mass 0.01
    assert m.logprob("ZEBRA", []) == pytest.approx(math.log10(0.01 / 2), abs=1e-6)
    assert m.logprob("<UNK>", []) == m.logprob("ZEBRA", [])
    specials = {"<eps>", "#0", "<s>", "</s>"}
    assert {w for w in SymbolTable.read(wt).symbols if w not in specials} <= m.vocab()  # every lexicon word
    zebra = SymbolTable.read(wt).ids["ZEBRA"]
    g = kaldifst.StdVectorFst.read(str(out["G"]))
    assert any(arc.olabel == zebra for s in range(g.num_states) for arc in kaldifst.ArcIterator(g, s))
    # switched off: the word is left out of the LM (and so can never be decoded)
    off = build_lm([text], tmp_path / "lm_off", LmConfig(order=2, lexicon_unigram_mass=0.0), wt)
    assert "ZEBRA" not in read_arpa(off["arpa"]).vocab()
