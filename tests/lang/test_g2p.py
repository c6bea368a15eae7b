"""espeak-ng G2P mapped to the CMU phone set (and espeak's own symbols)."""
from __future__ import annotations

import pytest

from asrkit.lang.g2p import ESPEAK_TO_ARPABET, espeak_to_arpabet, g2p, have_espeak
from asrkit.lang.lexicon import CMU_PHONES, CMU_PHONES_STRESSED, LexiconError

needs_espeak = pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")


def test_mapping_table_targets_are_cmu_phones():
    for sym, phones in ESPEAK_TO_ARPABET.items():
        assert set(phones) <= set(CMU_PHONES), sym


def test_mapping_of_tokens():
    assert espeak_to_arpabet(["h", "@", "l", "'oU"]) == ["HH", "AH", "L", "OW"]
    assert espeak_to_arpabet(["h", "@", "l", "'oU"], stressed=True) == ["HH", "AH0", "L", "OW1"]
    # linking r after ER is dropped; syllabic n → AH N
    assert espeak_to_arpabet(["f", "'aI3", "r-"]) == ["F", "AY", "ER"]
    assert espeak_to_arpabet(["b", "'V", "?", "n-"]) == ["B", "AH", "T", "AH", "N"]


@needs_espeak
def test_g2p_missing_word_in_target_phone_set():
    words = ["ZYXBRAT", "HELLO", "WORLD", "THOUGHT"]
    lex = g2p(words, "cmu")
    assert lex.words() == words
    for w in words:
        assert lex[w] and set(lex[w][0]) <= set(CMU_PHONES)
    assert lex["HELLO"][0] == ("HH", "AH", "L", "OW")
    assert lex["THOUGHT"][0] == ("TH", "AO", "T")
    stressed = g2p(["HELLO"], "cmu-stressed")
    assert set(stressed["HELLO"][0]) <= set(CMU_PHONES_STRESSED)
    assert stressed["HELLO"][0] == ("HH", "AH0", "L", "OW1")
    raw = g2p(["HELLO"], "espeak")
    assert raw["HELLO"][0] == ("h", "@", "l", "oU")


@needs_espeak
def test_g2p_phone_outside_allowed_set_is_an_error():
    with pytest.raises(LexiconError, match="'HELLO'.*outside the phone set"):
        g2p(["HELLO"], "cmu", allowed_phones=["HH", "AH", "L"])
