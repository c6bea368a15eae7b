"""Graphemic (word-piece) lexicon: word → pieces → word."""
from __future__ import annotations

import pytest

from asrkit.lang.graphemic import GraphemicModel, escape_piece, unescape_piece
from asrkit.lang.lexicon import LexiconError

TEXT = [
    "THE CAT SAT ON THE MAT".split(),
    "THE DOG SAT ON THE LOG".split(),
    "A CATALOGUE OF DOGS AND CATS".split(),
    "UPSILON IS A GREEK LETTER SILENT".split(),
] * 5


def test_round_trip(tmp_path):
    m = GraphemicModel.train(TEXT, vocab_size=40)
    words = sorted({w for s in TEXT for w in s})
    lex = m.lexicon(words)
    phones = set(m.phones())
    for w in words:
        (pron,) = lex[w]
        assert set(pron) <= phones
        assert pron[0].startswith("▁") or pron[0].startswith("@▁")
        assert m.decode(pron) == w
    # an unseen word made of seen letters still round-trips
    assert m.decode(m.spell("MATLOG")) == "MATLOG"
    # a sentence of pieces decodes to the words
    assert m.decode(m.spell("THE") + m.spell("CAT")) == "THE CAT"
    # saved and loaded models spell the same
    m.save(tmp_path / "g.model")
    assert GraphemicModel.load(tmp_path / "g.model").spell("CATALOGUE") == m.spell("CATALOGUE")


def test_reserved_pieces_escaped():
    assert escape_piece("SIL") == "@SIL" and unescape_piece("@SIL") == "SIL"
    assert escape_piece("#1") == "@#1"
    assert escape_piece("AB") == "AB" and unescape_piece("AB") == "AB"


def test_unseen_character_is_an_error():
    m = GraphemicModel.train(TEXT, vocab_size=40)
    with pytest.raises(LexiconError, match="'QUIZ'"):
        m.spell("QUIZ")  # Q and Z never seen
