"""Kaldi lang dirs: L.fst paths, disambiguation symbols, symbol tables, topologies."""
from __future__ import annotations

import math

import pytest

from asrkit.fst import kaldifst
from asrkit.lang.lang_dir import (
    DictDir, SymbolTable, add_lex_disambig, make_lexicon_fst, make_phone_table, make_word_table, prepare_lang,
    pronounce,
)
from asrkit.lang.lexicon import Lexicon, LexiconError
from asrkit.hmm.topology import make_gmm_topo, make_senone_topo, num_emitting_states, read_topo


def two_words():
    lex = Lexicon()
    lex.add("HI", ["h", "aI"])
    lex.add("YO", ["j", "oU"])
    return DictDir(lex)


def tables(dd, max_disambig=0):
    return make_phone_table(dd, max_disambig + 1), make_word_table(dd.lexicon.words())


def names(table, ids):
    return tuple(table.symbols[i] for i in ids)


def test_tables_layout():
    dd = two_words()
    phones, words = tables(dd)
    assert phones.symbols == ["<eps>", "SIL", "SPN", "aI", "h", "j", "oU", "#0", "#1"]
    assert words.symbols == ["<eps>", "<UNK>", "HI", "YO", "#0", "<s>", "</s>"]


def test_lexicon_fst_without_silence():
    dd = two_words()
    phones, words = tables(dd)
    L = make_lexicon_fst(list(dd.lexicon.items()), phones, words, sil_prob=0.0)
    assert pronounce(L, [words["HI"]]) == [(tuple(phones[p] for p in ["h", "aI"]), 0.0)]
    got = {names(phones, ph) for ph, _ in pronounce(L, [words["HI"], words["YO"]])}
    assert got == {("h", "aI", "j", "oU")}
    assert [names(phones, ph) for ph, _ in pronounce(L, [words["<UNK>"]])] == [("SPN",)]


def test_lexicon_fst_with_optional_silence():
    dd = two_words()
    phones, words = tables(dd)
    L = make_lexicon_fst(list(dd.lexicon.items()), phones, words, sil_prob=0.5)
    got = {names(phones, ph): cost for ph, cost in pronounce(L, [words["HI"]])}
    assert set(got) == {
        ("h", "aI"), ("SIL", "h", "aI"), ("h", "aI", "SIL"), ("SIL", "h", "aI", "SIL"),
    }
    # each path pays -log(0.5) at the start and at the end of the word
    for cost in got.values():
        assert cost == pytest.approx(2 * math.log(2), abs=1e-3)
    two = {names(phones, ph) for ph, _ in pronounce(L, [words["HI"], words["YO"]])}
    assert len(two) == 8 and ("SIL", "h", "aI", "SIL", "j", "oU", "SIL") in two
    assert ("h", "aI", "SIL", "SIL", "j", "oU") not in two  # never two silences in a row


def test_lexicon_fst_without_silence_paths_are_exact():
    """Every path of L with at most one word gives exactly one of the lexicon's (phones, word) pairs."""
    from asrkit.lang.lang_dir import fst_paths

    dd = two_words()
    phones, words = tables(dd)
    L = make_lexicon_fst(list(dd.lexicon.items()), phones, words, sil_prob=0.0)
    one_word = {(names(phones, i), names(words, o)) for i, o, _ in fst_paths(L, max_arcs=2) if len(o) == 1}
    assert one_word == {(("h", "aI"), ("HI",)), (("j", "oU"), ("YO",)), (("SPN",), ("<UNK>",))}


def test_add_lex_disambig_homophones_and_prefixes():
    entries = [
        ("RED", ("r", "E", "d")), ("READ", ("r", "E", "d")), ("REDDEN", ("r", "E", "d", "@", "n")),
        ("A", ("@",)), ("AN", ("@", "n")), ("CAT", ("k", "a", "t")),
    ]
    out, k = add_lex_disambig(entries)
    assert dict(out) == {
        "RED": ("r", "E", "d", "#1"), "READ": ("r", "E", "d", "#2"), "REDDEN": ("r", "E", "d", "@", "n"),
        "A": ("@", "#1"), "AN": ("@", "n"), "CAT": ("k", "a", "t"),
    }
    assert k == 2


def test_l_disambig_round_trip(tmp_path):
    lex = Lexicon()
    lex.add("RED", ["r", "E", "d"])
    lex.add("READ", ["r", "E", "d"])
    lex.add("READ", ["r", "i", "d"])
    lex.add("A", ["@"])
    lex.add("AN", ["@", "n"])
    dd = DictDir(lex)
    lang, senone = prepare_lang(dd, tmp_path)
    phones = SymbolTable.read(lang / "phones.txt")
    words = SymbolTable.read(lang / "words.txt")
    assert SymbolTable.read(senone / "phones.txt").symbols == phones.symbols
    assert [s for s in phones.symbols if s.startswith("#")] == ["#0", "#1", "#2", "#3"]
    Ld = kaldifst.StdVectorFst.read(str(lang / "L_disambig.fst"))
    L = kaldifst.StdVectorFst.read(str(lang / "L.fst"))
    seq = [words[w] for w in ["A", "RED", "AN"]]
    no_sil = {names(phones, p) for p, _ in pronounce(Ld, seq) if phones["SIL"] not in p}
    assert no_sil == {("@", "#1", "r", "E", "d", "#1", "@", "n")}
    with_sil = {names(phones, p) for p, _ in pronounce(Ld, seq)}
    assert ("SIL", "#3", "@", "#1", "SIL", "#3", "r", "E", "d", "#1", "@", "n", "SIL", "#3") in with_sil
    plain = {names(phones, p) for p, _ in pronounce(L, [words["READ"]]) if phones["SIL"] not in p}
    assert plain == {("r", "E", "d"), ("r", "i", "d")}
    # #0 self-loops let G's back-off symbol through L_disambig
    assert f"{phones['#0']} {words['#0']}" in " ".join(" ".join(l.split()) for l in Ld.to_str().splitlines())
    for name in ["silence", "nonsilence", "optional_silence", "disambig", "context_indep"]:
        for ext in ["txt", "int"]:
            assert (lang / "phones" / f"{name}.{ext}").exists()
    assert (lang / "oov.txt").read_text() == "<UNK>\n"
    assert (lang / "phones" / "optional_silence.txt").read_text() == "SIL\n"
    assert (lang / "phones" / "disambig.int").read_text().split() == [str(phones[f"#{k}"]) for k in range(4)]
    assert words.symbols[-3:] == ["#0", "<s>", "</s>"] and words.symbols[0] == "<eps>"


def test_topologies_parse_with_three_and_one_states(tmp_path):
    dd = two_words()
    lang, senone = prepare_lang(dd, tmp_path)
    t3 = read_topo((lang / "topo").read_text())
    t1 = read_topo((senone / "topo").read_text())
    assert t3.phones == t1.phones == list(range(1, 7))
    for p in t3.phones:
        assert num_emitting_states(t3, p) == 3 and t3.num_pdf_classes(p) == 3
        assert num_emitting_states(t1, p) == 1 and t1.num_pdf_classes(p) == 1 and t1.min_length(p) == 1
    t5 = read_topo(make_gmm_topo([3, 4], [1, 2], sil_states=5))
    assert num_emitting_states(t5, 1) == 5 and num_emitting_states(t5, 3) == 3


def test_bad_topology_raises():
    with pytest.raises(Exception):
        read_topo("<Topology> nonsense")


def test_silence_phone_overlap_is_an_error():
    lex = Lexicon()
    lex.add("X", ["SIL", "a"])
    with pytest.raises(LexiconError, match="both silence and non-silence"):
        DictDir(lex, nonsilence_phones=["SIL", "a"])


def test_prepare_lang_skips_when_done(tmp_path):
    dd = two_words()
    lang, _ = prepare_lang(dd, tmp_path)
    mtime = (lang / "L.fst").stat().st_mtime_ns
    prepare_lang(dd, tmp_path)
    assert (lang / "L.fst").stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
