"""Small exact tests of the synthetic corpus's parts."""
from __future__ import annotations

import numpy as np
import pytest

from asrkit.synth import acoustics
from asrkit.synth.espeak import (EspeakError, PhoneEvent, SynthResult, get_espeak, load_library,
                                 run_pristine)
from asrkit.synth.phones import from_kaldi_phone, is_pause, to_kaldi_phone
from asrkit.synth.speakers import make_speakers
from asrkit.synth.text import SentenceGenerator
from asrkit.synth.utterance import segment


def test_missing_library_names_debian_package():
    with pytest.raises(EspeakError, match="libespeak-ng1"):
        load_library("libespeak-ng-does-not-exist.so.9")


def test_unknown_voice_and_variant():
    es = get_espeak()
    with pytest.raises(EspeakError, match="not available"):
        es.check_voice("xx-nosuch")
    with pytest.raises(EspeakError, match="variant"):
        es.check_voice("en-us", "nosuchvariant")


def _say(es, text):
    es.set_voice("en-us", "m3", 165, 50, 50)
    return es.synth(text)


def test_synth_events_cover_words():
    text = "there was a man in the house"  # espeak voices "there was" under one word event
    r = run_pristine(get_espeak(), _say, text)  # as the corpus does: from the initial library state
    assert r.audio.dtype == np.int16 and r.num_samples > 22050
    words = [p.word for p in r.phones if not is_pause(p.phone)]
    assert sorted(set(words)) == list(range(len(text.split())))
    assert words == sorted(words)
    starts = [p.start for p in r.phones]
    assert starts == sorted(starts) and starts[-1] <= r.num_samples


def test_pristine_synthesis_is_repeatable():
    es = get_espeak()
    a = run_pristine(es, _say, "the farmer sold his red car")
    run_pristine(es, _say, "a cat")
    b = run_pristine(es, _say, "the farmer sold his red car")
    assert np.array_equal(a.audio, b.audio)
    assert [(p.phone, p.start) for p in a.phones] == [(p.phone, p.start) for p in b.phones]


def test_phone_symbols_are_kaldi_safe_and_injective():
    mnems = ["a#", "I#", "t#", "@2", "3:", ";", "?", "t[", "r-", "aI@", "%", "i@3", "'E", ",aI"]
    out = [to_kaldi_phone(m) for m in mnems]
    for o in out:
        assert o and not o.startswith("#") and o != "<eps>" and not any(c.isspace() for c in o)
    assert len(set(out)) == len(out)
    assert to_kaldi_phone("'E") == "E" and to_kaldi_phone(",aI") == "aI"
    for m in mnems[:-2]:
        assert from_kaldi_phone(to_kaldi_phone(m)) == m
    assert is_pause("_") and is_pause("_:") and not is_pause("a")


def test_generator_deterministic_and_sized():
    g = SentenceGenerator(vocab_size=400)
    assert len(g.vocabulary) <= 400
    a = [g.sentence(np.random.default_rng([3, i])) for i in range(50)]
    b = [g.sentence(np.random.default_rng([3, i])) for i in range(50)]
    assert a == b
    for s in a:
        assert s and all(w in g.vocabulary and w.isalpha() and w.islower() for w in s)
    big = SentenceGenerator(vocab_size=1200)
    assert len(big.vocabulary) > 1000


def test_generator_zipf_like():
    g = SentenceGenerator(vocab_size=1200)
    rng = np.random.default_rng(0)
    counts = {}
    for _ in range(3000):
        for w in g.sentence(rng):
            counts[w] = counts.get(w, 0) + 1
    freq = sorted(counts.values(), reverse=True)
    assert freq[0] > 20 * freq[len(freq) // 2]  # a heavy head and a long tail


def test_speakers_disjoint_pairs():
    spk, babble = make_speakers({"train_sup": 20, "train_unsup": 40, "dev": 5, "test_clean": 5,
                                 "test_noisy": 5}, seed=0)
    pairs = [(s.voice, s.variant) for lst in spk.values() for s in lst]
    assert len(set(pairs)) == len(pairs)
    ids = [s.spk for lst in spk.values() for s in lst]
    assert len(set(ids)) == len(ids)
    again, _ = make_speakers({"train_sup": 20, "train_unsup": 40, "dev": 5, "test_clean": 5,
                              "test_noisy": 5}, seed=0)
    assert again == spk
    with pytest.raises(ValueError, match="pairs"):
        make_speakers({"train_sup": 10}, seed=0, voices=("en-us",), variants=("m1", "m2"))


def test_resample_rate_and_gain():
    sr = 22050
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y = acoustics.resample_poly(x, 16000, sr)
    assert len(y) == 16000
    ref = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.max(np.abs(y[200:-200] - ref[200:-200])) < 1e-2
    hi = acoustics.resample_poly(np.sin(2 * np.pi * 10000 * t).astype(np.float32), 16000, sr)
    assert np.max(np.abs(hi[200:-200])) < 1e-2  # above the new Nyquist: removed


def test_mix_at_snr_and_rir():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(16000).astype(np.float32)
    n = acoustics.coloured_noise(rng, 16000, 1.0)
    y = acoustics.mix_at_snr(s, n, 10.0)
    snr = 10 * np.log10(np.mean(s ** 2) / np.mean((y - s) ** 2))
    assert abs(snr - 10.0) < 1e-3
    h = acoustics.synthetic_rir(rng, 0.5)
    assert h[0] == 1.0 and len(h) == 8000
    assert np.abs(h[-800:]).max() < np.abs(h[1:800]).max() * 0.1


def test_segment_gives_every_phone_a_duration():
    ev = [PhoneEvent("a", 10, 0), PhoneEvent("l", 100, 0), PhoneEvent("z", 100, 0), PhoneEvent("_", 300, -1),
          PhoneEvent("b", 400, 1), PhoneEvent("r", 1000, 1), PhoneEvent("_", 1000, -1)]
    segs = segment(SynthResult(np.zeros(1000, np.int16), ev, 2), 22050, 5, 1005)
    assert [p for _, _, p, _ in segs] == ["a", "l", "z", "b", "r"]
    assert segs[1][:2] == (105, 205) and segs[2][:2] == (205, 305)  # l and z share l's span
    for (s, e, _, _), nxt in zip(segs, segs[1:] + [None]):
        assert e > s and (nxt is None or nxt[0] >= e)
    assert segs[-1][1] <= 1005


def test_lm_text_is_apart_from_the_transcripts():
    """lm_text sentences come from their own seeds: same generator, other random streams."""
    from asrkit.synth.text import SentenceGenerator
    from asrkit.synth.utterance import sentence_for

    gen = SentenceGenerator(300, 1.0)
    lm = [sentence_for(gen, 0, "lm_text", i) for i in range(50)]
    train = [sentence_for(gen, 0, "train_sup", i) for i in range(50)]
    assert lm != train
    assert lm == [sentence_for(gen, 0, "lm_text", i) for i in range(50)]
