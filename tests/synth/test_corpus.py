"""The synthetic corpus end to end on tiny configurations (a few seconds each)."""
from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.synth.corpus import SynthConfig, make_corpus
from asrkit.synth.speakers import SPLITS

TINY_MINUTES = 0.4


def _tiny(seed=0):
    return SynthConfig.tiny(seed=seed, minutes=TINY_MINUTES)


@pytest.fixture(scope="module")
def corpus_nj1(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "nj1"
    make_corpus(root, _tiny(), nj=1, progress=False)
    return root


@pytest.fixture(scope="module")
def corpus_nj2(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "nj2"
    make_corpus(root, _tiny(), nj=2, progress=False)
    return root


def _files(root: Path):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and ".work" not in p.parts)


def _read_table(path: Path):
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def _ctm(path: Path):
    out = defaultdict(list)
    for line in path.read_text().splitlines():
        utt, ch, start, dur, ph = line.split()
        assert ch == "1"
        out[utt].append((float(start), float(dur), ph))
    return out


def test_layout(corpus_nj1):
    root = corpus_nj1
    for name in ("lexicon.txt", "speakers.tsv", "corpus.json", "oracle/train_unsup/text"):
        assert (root / name).is_file(), name
    for s in SPLITS:
        for f in ("wav.scp", "utt2spk", "spk2utt", "utt2cond", "phones.ctm"):
            assert (root / "data" / s / f).is_file(), (s, f)
        assert (root / "data" / s / "text").exists() == (s != "train_unsup")
    assert (root.parent / f".{root.name}.done").exists()


def test_same_seed_same_bytes_whatever_nj(corpus_nj1, corpus_nj2):
    f1, f2 = _files(corpus_nj1), _files(corpus_nj2)
    assert f1 == f2
    assert any(str(f).endswith(".flac") for f in f1)
    for f in f1:
        assert (corpus_nj1 / f).read_bytes() == (corpus_nj2 / f).read_bytes(), f


def test_other_seed_other_text(corpus_nj1, tmp_path):
    make_corpus(tmp_path / "s1", SynthConfig.tiny(seed=1, minutes=0.15), nj=2, progress=False)
    a = (corpus_nj1 / "data" / "dev" / "text").read_text()
    b = (tmp_path / "s1" / "data" / "dev" / "text").read_text()
    assert a.split("\n")[0].split()[1:] != b.split("\n")[0].split()[1:]


def test_kaldi_files_sorted_and_consistent(corpus_nj1):
    for s in SPLITS:
        d = corpus_nj1 / "data" / s
        keys = None
        for f in ("wav.scp", "utt2spk", "utt2cond", "text"):
            if not (d / f).exists():
                continue
            k = [line.split()[0] for line in (d / f).read_text().splitlines()]
            assert k == sorted(k) and len(set(k)) == len(k), (s, f)
            keys = keys or k
            assert k == keys, (s, f)
        utt2spk = _read_table(d / "utt2spk")
        for utt, spk in utt2spk.items():
            assert utt.startswith(spk + "-")
        spk2utt = {k: v.split() for k, v in _read_table(d / "spk2utt").items()}
        assert sorted(spk2utt) == sorted(set(utt2spk.values()))
        assert sorted(u for us in spk2utt.values() for u in us) == sorted(utt2spk)
        for utt, path in _read_table(d / "wav.scp").items():
            assert not path.startswith("/") and (corpus_nj1 / path).is_file()


def test_text_uppercase_no_punctuation(corpus_nj1):
    for s in ("train_sup", "dev", "test_clean", "test_noisy"):
        for words in _read_table(corpus_nj1 / "data" / s / "text").values():
            assert words and all(w.isalpha() and w.isupper() for w in words.split())


def test_splits_speaker_disjoint_and_unseen_voice_pairs(corpus_nj1):
    rows = [line.split("\t") for line in (corpus_nj1 / "speakers.tsv").read_text().splitlines()[1:]]
    by_split = defaultdict(set)
    pairs = defaultdict(set)
    for spk, split, voice, variant, pitch, speed in rows:
        by_split[split].add(spk)
        pairs[split].add((voice, variant))
    assert set(by_split) == set(SPLITS)
    seen = set()
    for s in SPLITS:
        spks = set(_read_table(corpus_nj1 / "data" / s / "utt2spk").values())
        assert spks == by_split[s]
        assert not (spks & seen)
        seen |= spks
    train_pairs = pairs["train_sup"] | pairs["train_unsup"]
    for s in ("dev", "test_clean", "test_noisy"):
        assert not (pairs[s] & train_pairs), s


def test_conditions(corpus_nj1):
    for s in SPLITS:
        conds = set(_read_table(corpus_nj1 / "data" / s / "utt2cond").values())
        assert conds <= {"clean", "noisy", "reverb", "noisy_reverb"}
        if s == "test_clean":
            assert conds == {"clean"}
        if s == "test_noisy":
            assert conds == {"noisy_reverb"}


def test_audio_16k_mono(corpus_nj1):
    for s in SPLITS:
        for utt, path in list(_read_table(corpus_nj1 / "data" / s / "wav.scp").items())[:5]:
            info = sf.info(str(corpus_nj1 / path))
            assert info.samplerate == 16000 and info.channels == 1 and info.format == "FLAC"
            x, _ = sf.read(str(corpus_nj1 / path), dtype="int16")
            assert np.abs(x).max() > 1000


def test_phone_segmentation_covers_utterances(corpus_nj1):
    for s in SPLITS:
        d = corpus_nj1 / "data" / s
        ctm = _ctm(d / "phones.ctm")
        wav = _read_table(d / "wav.scp")
        assert set(ctm) == set(wav)
        texts = _read_table(d / "text") if (d / "text").exists() else \
            _read_table(corpus_nj1 / "oracle" / "train_unsup" / "text")
        for utt, phones in ctm.items():
            dur = sf.info(str(corpus_nj1 / wav[utt])).frames / 16000
            assert len(phones) >= len(texts[utt].split())
            prev_end = 0.0
            for start, length, ph in phones:
                assert length > 0
                assert start >= prev_end - 1e-7
                prev_end = start + length
            assert prev_end <= dur + 1e-4
            assert phones[0][0] > 0.05  # leading silence is not a phone


def _lexicon(root: Path):
    lex = defaultdict(set)
    for line in (root / "lexicon.txt").read_text().splitlines():
        w, *prons = line.split()
        assert prons, line
        lex[w].add(tuple(prons))
    return lex


def test_lexicon_covers_train_sup_transcripts_and_phones(corpus_nj1):
    lex = _lexicon(corpus_nj1)
    lex_phones = {ph for ps in lex.values() for p in ps for ph in p}
    for ph in lex_phones:
        assert not ph.startswith("#") and ph != "<eps>" and ph.isprintable()
    d = corpus_nj1 / "data" / "train_sup"
    for words in _read_table(d / "text").values():
        for w in words.split():
            assert w in lex, w
    spoken = {p for phones in _ctm(d / "phones.ctm").values() for _, _, p in phones}
    assert spoken == lex_phones  # every lexicon phone has training audio
    info = json.loads((corpus_nj1 / "corpus.json").read_text())
    assert set(info["phones"]) >= lex_phones
    assert info["lexicon_version"] == 2 and info["lexicon"]["words"] == len(lex)


def test_lexicon_holds_no_word_seen_only_in_dev_or_test(corpus_nj1):
    """Built from train_sup and the LM text only: a word of the dev / test (or hidden unlabelled)
    transcripts that neither holds is an OOV, and corpus.json counts those."""
    lex = _lexicon(corpus_nj1)
    allowed = {w for t in _read_table(corpus_nj1 / "data" / "train_sup" / "text").values() for w in t.split()}
    allowed |= {w for line in (corpus_nj1 / "lm_text.txt").read_text().splitlines() for w in line.split()}
    assert set(lex) <= allowed
    info = json.loads((corpus_nj1 / "corpus.json").read_text())
    for s in ("dev", "test_clean", "test_noisy"):
        words = [w for t in _read_table(corpus_nj1 / "data" / s / "text").values() for w in t.split()]
        oov = sum(w not in lex for w in words)
        assert info["lexicon"]["oov"][s] == {"tokens": len(words), "oov_tokens": oov,
                                             "oov_types": len({w for w in words if w not in lex})}
    # the LM text's words got pronunciations too (not only the ones spoken in train_sup)
    assert info["lexicon"]["from_lm_text"] > 0


def test_ctm_phones_spell_the_lexicon_pronunciations(corpus_nj1):
    """Each train_sup utterance's phone sequence is a concatenation of lexicon pronunciations of its words."""
    lex = _lexicon(corpus_nj1)
    d = corpus_nj1 / "data" / "train_sup"
    texts = _read_table(d / "text")
    for utt, phones in _ctm(d / "phones.ctm").items():
        seq = tuple(p for _, _, p in phones)
        reachable = {0}
        for w in texts[utt].split():
            reachable = {i + len(p) for i in reachable for p in lex[w] if seq[i:i + len(p)] == p}
        assert len(seq) in reachable, utt


def test_older_lexicon_is_rewritten_without_new_audio(corpus_nj1, tmp_path):
    """A finished corpus of lexicon version 1 is brought up to date from its job records."""
    root = tmp_path / "c"
    shutil.copytree(corpus_nj1, root)
    shutil.copy(corpus_nj1.parent / f".{corpus_nj1.name}.done", tmp_path / ".c.done")
    info = json.loads((root / "corpus.json").read_text())
    del info["lexicon_version"]
    (root / "corpus.json").write_text(json.dumps(info))
    (root / "lexicon.txt").write_text("STALE s t ei l\n")
    flac = sorted((root / "audio").rglob("*.flac"))[0]
    mtime = flac.stat().st_mtime_ns
    info = make_corpus(root, _tiny(), nj=1, progress=False)
    assert info["lexicon_version"] == 2
    assert (root / "lexicon.txt").read_bytes() == (corpus_nj1 / "lexicon.txt").read_bytes()
    assert flac.stat().st_mtime_ns == mtime


def test_unlabelled_has_no_text_but_oracle_does(corpus_nj1):
    d = corpus_nj1 / "data" / "train_unsup"
    assert not (d / "text").exists()
    oracle = _read_table(corpus_nj1 / "oracle" / "train_unsup" / "text")
    assert set(oracle) == set(_read_table(d / "wav.scp"))
    assert all(v.strip() for v in oracle.values())


def test_resume_after_interruption(corpus_nj1, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(corpus_nj1, root)
    # as if killed: final outputs not written, one job unfinished, one audio file missing
    for name in ("corpus.json", "lexicon.txt", "speakers.tsv"):
        (root / name).unlink()
        (root / f".{name}.done").unlink()
    shutil.rmtree(root / "data" / "dev")
    (root / "data" / ".dev.done").unlink()
    job = sorted((root / ".work" / "jobs" / "dev").glob("job*.json"))[0]
    (job.parent / f".{job.name}.done").unlink()
    job.unlink()
    flac = sorted((root / "audio" / "dev").rglob("*.flac"))[0]
    flac.unlink()
    make_corpus(root, _tiny(), nj=2, progress=False)
    assert _files(root) == _files(corpus_nj1)
    for f in _files(root):
        assert (root / f).read_bytes() == (corpus_nj1 / f).read_bytes(), f


def test_other_config_refused(corpus_nj1, tmp_path):
    root = tmp_path / "c"
    shutil.copytree(corpus_nj1, root)
    shutil.copy(corpus_nj1.parent / f".{corpus_nj1.name}.done", tmp_path / ".c.done")
    info = make_corpus(root, _tiny(), nj=1, progress=False)  # complete: nothing to do
    assert info["fingerprint"] == _tiny().fingerprint()
    with pytest.raises(RuntimeError, match="another configuration"):
        make_corpus(root, SynthConfig.tiny(seed=5, minutes=TINY_MINUTES), nj=1, progress=False)


def test_bad_voice_is_a_clear_error(tmp_path):
    from asrkit.synth.espeak import EspeakError

    cfg = SynthConfig.tiny(minutes=0.1, voices=("en-us", "xx-nosuch"),
                           variants=("m1", "m2", "f1", "f2", "m3", "m4"))
    with pytest.raises(EspeakError, match="xx-nosuch"):
        make_corpus(tmp_path / "c", cfg, nj=1, progress=False)
    cfg = SynthConfig.tiny(minutes=0.1, variants=("m1", "nosuchvariant"))
    with pytest.raises(EspeakError, match="nosuchvariant"):
        make_corpus(tmp_path / "d", cfg, nj=1, progress=False)


def test_lm_text_matches_the_transcripts_vocabulary(corpus_nj1):
    """LM text is uppercase like the transcripts, and mostly made of words the lexicon knows."""
    lines = (corpus_nj1 / "lm_text.txt").read_text().splitlines()
    assert lines and all(line == line.upper() and line.strip() for line in lines)
    lexicon = {line.split()[0] for line in (corpus_nj1 / "lexicon.txt").read_text().splitlines()}
    words = [w for line in lines for w in line.split()]
    assert sum(w in lexicon for w in words) / len(words) > 0.3
