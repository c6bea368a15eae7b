"""Lexicon reading, validation, stress stripping, OOV rates, CMUdict and the real speechocean762 lexicon."""
from __future__ import annotations

import pytest

from asrkit.lang.lexicon import (
    CMU_PHONES, Lexicon, LexiconError, load_cmudict, oov_rate, read_lexicon, read_text, strip_stress,
)


def write(tmp_path, text, name="lexicon.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_strip_stress():
    assert strip_stress("AH0") == "AH"
    assert strip_stress("EY1") == "EY"
    assert strip_stress("IY2") == "IY"
    assert strip_stress("B") == "B"
    assert strip_stress("SIL") == "SIL"


def test_read_lexicon_multiple_prons_and_stress(tmp_path):
    p = write(tmp_path, "A\tAH0\nA\tEY1\nABLE\tEY1 B AH0 L\nA AH1\n\n")
    lex = read_lexicon(p)
    assert lex["A"] == [("AH0",), ("EY1",), ("AH1",)]
    lex = read_lexicon(p, strip_stress_digits=True, phone_set=CMU_PHONES)
    assert lex["A"] == [("AH",), ("EY",)]  # AH1 → AH: a duplicate, dropped
    assert lex["ABLE"] == [("EY", "B", "AH", "L")]


def test_empty_pronunciation_names_line_and_word(tmp_path):
    p = write(tmp_path, "A AH\nHELLO\n")
    with pytest.raises(LexiconError, match=r"lexicon.txt:2: word 'HELLO' has no phones"):
        read_lexicon(p)


def test_phone_outside_phone_set_names_line_and_word(tmp_path):
    p = write(tmp_path, "A AH\nBAD B XX AH\n")
    with pytest.raises(LexiconError, match=r"lexicon.txt:2: word 'BAD' has phones outside the phone set: XX"):
        read_lexicon(p, phone_set=CMU_PHONES)
    lex = Lexicon()
    lex.add("BAD", ["B", "QQ"])
    with pytest.raises(LexiconError, match="'BAD'.*QQ"):
        lex.validate(CMU_PHONES, source="x")
    lex2 = Lexicon()
    lex2.add("EMPTY", [])
    with pytest.raises(LexiconError, match="'EMPTY' has an empty pronunciation"):
        lex2.validate()


def test_reserved_word_rejected(tmp_path):
    with pytest.raises(LexiconError, match="reserved"):
        read_lexicon(write(tmp_path, "#0 AH\n"))


def test_oov_rate(tmp_path):
    lex = Lexicon()
    for w in ["THE", "CAT", "SAT"]:
        lex.add(w, ["X"])
    st = oov_rate([["THE", "CAT", "SAT"], ["THE", "DOG", "SAT", "DOG"]], lex)
    assert (st.tokens, st.oov_tokens, st.types, st.oov_types) == (7, 2, 4, 1)
    assert st.token_rate == pytest.approx(2 / 7)
    assert st.type_rate == pytest.approx(1 / 4)
    assert st.oov_counts == {"DOG": 2}
    assert "28.57%" in st.summary()


def test_read_text_with_and_without_ids(tmp_path):
    p = write(tmp_path, "utt1 HELLO WORLD\nutt2 HI\n", "text")
    assert read_text(p) == [["HELLO", "WORLD"], ["HI"]]
    assert read_text(p, has_ids=False)[1] == ["utt2", "HI"]


def test_cmudict_offline():
    lex = load_cmudict()
    assert len(lex) > 100_000
    assert ("HH", "AH", "L", "OW") in lex["HELLO"]
    assert lex.phones() <= set(CMU_PHONES)


def test_speechocean_lexicon(speechocean_dir):
    path = speechocean_dir / "resource" / "lexicon.txt"
    raw = read_lexicon(path)
    assert len(raw) > 2000 and ("AH0",) in raw["A"] and ("EY0",) in raw["A"]
    lex = read_lexicon(path, strip_stress_digits=True, phone_set=CMU_PHONES)
    assert lex.phones() <= set(CMU_PHONES)
    st = oov_rate(read_text(speechocean_dir / "train" / "text"), lex)
    assert st.tokens > 10_000 and st.token_rate < 0.01


# --- inputs that used to pass silently ---------------------------------------------------------------
def test_lexiconp_read_as_such(tmp_path):
    p = write(tmp_path, "HELLO 1.0 HH AH0 L OW1\nHELLO 0.5 HH EH0 L OW1\nWORLD 1 W ER1 L D\n")
    lex = read_lexicon(p)
    assert lex["HELLO"] == [("HH", "AH0", "L", "OW1"), ("HH", "EH0", "L", "OW1")]
    assert "1.0" not in lex.phones()


def test_probability_on_some_lines_only_is_refused_with_the_line(tmp_path):
    p = write(tmp_path, "WORLD W ER1 L D\nHELLO 1.0 HH AH0 L OW1\n")
    with pytest.raises(LexiconError, match=rf"^{p}:2: a number after the word .*HELLO 1.0.*unlike {p}:1"):
        read_lexicon(p)


@pytest.mark.parametrize("char,name", [("\u00a0", "NO-BREAK SPACE"), ("\u200b", "ZERO WIDTH SPACE"),
                                       ("\u2003", "EM SPACE"), ("\x0b", "control character")])
def test_odd_white_space_refused_with_line_and_column(tmp_path, char, name):
    p = write(tmp_path, f"WORLD W ER1 L D\nHELLO HH AH0{char}L OW1\n")
    with pytest.raises(LexiconError, match=rf"^{p}:2: character U\+{ord(char):04X} \({name}\) at column 13"):
        read_lexicon(p)


def test_phone_set_cmu_refuses_a_non_cmu_phone_with_the_line(tmp_path):
    p = write(tmp_path, "HELLO HH AH L OW\nBROKEN XX YY\n")
    with pytest.raises(LexiconError, match=rf"^{p}:2: word 'BROKEN' has phones outside the phone set: XX YY"):
        read_lexicon(p, phone_set=CMU_PHONES)


def test_kaldi_text_always_has_ids_even_without_digits(tmp_path):
    p = write(tmp_path, "alpha HELLO WORLD\nbravo HI\n", "text")  # ids that look like words
    assert read_text(p) == [["HELLO", "WORLD"], ["HI"]]


def test_non_utf8_named_with_file_line_and_byte_offset(tmp_path):
    p = tmp_path / "text"
    p.write_bytes("u1 HELLO\nu2 CAF".encode() + b"\xe9 NOIR\n")
    with pytest.raises(LexiconError, match=rf"^{p}:2: not valid UTF-8 at byte offset 15 \(byte 0xe9"):
        read_text(p)
    q = tmp_path / "lexicon.txt"
    q.write_bytes(b"CAF\xe9 K AE F\n")
    with pytest.raises(LexiconError, match=rf"^{q}:1: not valid UTF-8 at byte offset 3"):
        read_lexicon(q)


def test_espeak_phones_named_by_digits_are_phones(tmp_path):
    p = write(tmp_path, "ON 0 n\nBIRD b 3: d\nHER h 3\n")  # espeak-ng's "0" and "3": not probabilities
    assert read_lexicon(p)["ON"] == [("0", "n")]
