"""asrkit.testing.lang: the toy lang dirs are stage 3's (prepare_lang) for the same lexicon; grammars."""
from __future__ import annotations

from pathlib import Path

import pytest

from asrkit.fst import kaldifst
from asrkit.lang.lang_dir import SymbolTable, fst_paths, prepare_lang
from asrkit.testing.lang import (TOY_LEXICON, TOY_SENTENCES, make_toy_dict, write_toy_lang_dir,
                                 write_toy_sentence_grammar, write_toy_word_loop_grammar)


def _files(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_toy_lang_dirs_are_what_prepare_lang_writes(tmp_path):
    lang, lang_senone = prepare_lang(make_toy_dict(TOY_LEXICON), tmp_path / "ref")
    assert _files(write_toy_lang_dir(tmp_path / "three", TOY_LEXICON)) == _files(lang)
    assert _files(write_toy_lang_dir(tmp_path / "one", TOY_LEXICON, num_states=1)) == _files(lang_senone)
    # one pronunciation may be given as a bare string
    bare = {w: prons[0] for w, prons in TOY_LEXICON.items()}
    assert _files(write_toy_lang_dir(tmp_path / "bare", bare)) == _files(lang)


def _arcs_with_ilabel(fst_path: Path, label: int) -> int:
    fst = kaldifst.StdVectorFst.read(str(fst_path))
    return sum(1 for line in fst.to_str().splitlines() if len(line.split()) >= 4 and int(line.split()[2]) == label)


def test_without_the_wdisambig_loop(tmp_path):
    with_loop = write_toy_lang_dir(tmp_path / "a", TOY_LEXICON)
    without = write_toy_lang_dir(tmp_path / "b", TOY_LEXICON, wdisambig_loop=False)
    p0 = SymbolTable.read(with_loop / "phones.txt")["#0"]
    assert _arcs_with_ilabel(with_loop / "L_disambig.fst", p0) == 1
    assert _arcs_with_ilabel(without / "L_disambig.fst", p0) == 0
    assert {k: v for k, v in _files(with_loop).items() if k != "L_disambig.fst"} == \
        {k: v for k, v in _files(without).items() if k != "L_disambig.fst"}


def test_other_topologies_refused(tmp_path):
    with pytest.raises(ValueError, match="num_states must be 3"):
        write_toy_lang_dir(tmp_path / "x", TOY_LEXICON, num_states=2)


def _word_sequences(g: Path, words: SymbolTable, max_arcs: int):
    fst = kaldifst.StdVectorFst.read(str(g))
    return sorted(" ".join(words.symbols[i] for i in ol) for _, ol, _ in fst_paths(fst, max_arcs))


def test_grammars(tmp_path):
    lang = write_toy_lang_dir(tmp_path / "lang", TOY_LEXICON)
    words = SymbolTable.read(lang / "words.txt")
    g = write_toy_sentence_grammar(lang, TOY_SENTENCES, tmp_path / "G.fst")
    assert _word_sequences(g, words, 10) == sorted(TOY_SENTENCES)
    loop = write_toy_word_loop_grammar(lang, ["yes", "no"], tmp_path / "loop.fst")
    assert _word_sequences(loop, words, 2) == ["no", "no no", "no yes", "yes", "yes no", "yes yes"]
    with pytest.raises(ValueError, match="empty sentence"):
        write_toy_sentence_grammar(lang, ["yes", " "], tmp_path / "bad.fst")
