"""asrkit.testing.digits: words from the production espeak wrapper, the same whatever came before, and
word starts where the words are."""
from __future__ import annotations

import numpy as np
import pytest

from asrkit.lang.g2p import g2p, have_espeak
from asrkit.testing.digits import RATE, VOICES, make_digit_corpus, make_word_audio

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


def test_a_word_sounds_the_same_whatever_was_synthesised_before():
    synth = make_word_audio.__wrapped__  # past the cache, which relies on this
    first = synth("one", "en-us+m3", 150)
    synth("seven", "en-gb", 180)
    assert np.array_equal(synth("one", "en-us+m3", 150), first)
    assert 0.1 * RATE < len(first) < 1.0 * RATE
    thr = 0.02 * np.abs(first).max()  # trimmed: the first and last samples are above the threshold
    assert abs(first[0]) > thr and abs(first[-1]) > thr


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_word_starts_are_where_the_words_are():
    c = make_digit_corpus(3, voices=VOICES[:3], seed=0)
    assert c.lexicon == {w: " ".join(p[0]) for w, p in g2p(list(c.lexicon), phone_set="espeak").entries.items()}
    for u, segs in c.word_starts.items():
        x = c.audio[u]
        assert [w for w, _, _ in segs] == c.text[u]
        leading = x[: round(segs[0][1] * RATE)]
        assert _rms(leading) < 0.005  # the noise floor only
        for _, start, dur in segs:
            assert _rms(x[round(start * RATE): round((start + dur) * RATE)]) > 10 * _rms(leading)
