"""Spoken digits (espeak-ng) with exactly known word starts, for the GMM and senone tests and benchmarks.

Each word is synthesised alone (:mod:`asrkit.synth.espeak`, in a fork of the freshly initialised
library, :func:`~asrkit.synth.espeak.run_pristine`, so that its audio does not depend on what was
synthesised before), resampled to 16 kHz, its leading/trailing
silence trimmed, and the words of an utterance are concatenated with random silences between them
(and around them), so the start time of every word is known to the sample. A low noise floor is
added. The lexicon is espeak-ng's own phonemes without stress marks (:func:`asrkit.lang.g2p.g2p`);
:func:`asrkit.testing.lang.write_toy_lang_dir` makes its lang dir, :func:`write_digit_cuts` a lhotse
CutSet with stored MFCC, as stage 2 would.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.features import Mfcc, MfccConfig
from lhotse.features.io import NumpyFilesWriter

from asrkit.lang.g2p import g2p
from asrkit.synth.acoustics import resample_poly
from asrkit.synth.espeak import NATIVE_RATE, Espeak, get_espeak, run_pristine
from asrkit.synth.speakers import VOICE_ALIASES

PathLike = Union[str, Path]
RATE = 16000
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
#: espeak-ng voices, "voice+variant" as on espeak-ng's command line (one voice = one speaker)
VOICES = ["en-us", "en-us+m3", "en-us+f2", "en-gb", "en-gb+f4", "en-gb-scotland", "en-gb-x-rp+m5",
          "en-us+f5", "en-gb+m2", "en-us+klatt"]
DEFAULT_PITCH = 50  # espeak-ng's defaults (those of the command line's -p and range)
DEFAULT_PITCH_RANGE = 50


def _synth(es: Espeak, word: str, voice: str, variant: Optional[str], speed: int) -> np.ndarray:
    es.set_voice(voice, variant, speed, DEFAULT_PITCH, DEFAULT_PITCH_RANGE)
    return es.synth(word).audio


@lru_cache(maxsize=None)  # the same audio every time (pristine synthesis): the tests' corpora share words
def make_word_audio(word: str, voice: str, speed: int) -> np.ndarray:
    """``word`` alone at 16 kHz (float32, read-only), leading and trailing silence trimmed."""
    name, _, variant = voice.partition("+")
    audio = run_pristine(get_espeak(), _synth, word, VOICE_ALIASES.get(name, name), variant or None, speed)
    x = resample_poly(audio.astype(np.float32) / 32768.0, RATE, NATIVE_RATE)
    thr = 0.02 * np.abs(x).max()
    nz = np.flatnonzero(np.abs(x) > thr)
    x = x[nz[0]: nz[-1] + 1] if len(nz) else x
    x.setflags(write=False)
    return x


@dataclass
class DigitCorpus:
    audio: Dict[str, np.ndarray]
    text: Dict[str, List[str]]
    spk: Dict[str, str]
    word_starts: Dict[str, List[Tuple[str, float, float]]]  # (word, start s, duration s)
    lexicon: Dict[str, str]
    rate: int = RATE
    feats: Dict[str, np.ndarray] = field(default_factory=dict)  # raw 13-dim MFCC

    def mfcc(self) -> Dict[str, np.ndarray]:
        ex = Mfcc(MfccConfig())
        for u, x in self.audio.items():
            if u not in self.feats:
                self.feats[u] = np.asarray(ex.extract(x, self.rate), dtype=np.float32)
        return self.feats


def make_digit_corpus(num_utts: int, voices: Sequence[str] = VOICES[:4], words: Sequence[str] = WORDS,
                      min_words: int = 2, max_words: int = 4, seed: int = 0, prefix: str = "utt",
                      speeds: Sequence[int] = (150, 180), noise_db: float = -45.0) -> DigitCorpus:
    """``num_utts`` utterances spread over ``voices`` (one voice = one speaker)."""
    rng = np.random.default_rng(seed)
    audio, text, spk, starts = {}, {}, {}, {}
    for i in range(num_utts):
        voice = voices[i % len(voices)]
        speed = int(rng.choice(list(speeds)))
        ws = [str(w) for w in rng.choice(list(words), size=int(rng.integers(min_words, max_words + 1)))]
        pieces, segs, t = [], [], 0
        for j, w in enumerate(ws):
            gap = float(rng.uniform(0.15, 0.35)) if j == 0 else float(rng.choice([0.0, rng.uniform(0.08, 0.3)]))
            n = int(gap * RATE)
            pieces.append(np.zeros(n, dtype=np.float32))
            t += n
            seg = make_word_audio(w, voice, speed)
            segs.append((w, t / RATE, len(seg) / RATE))
            pieces.append(seg)
            t += len(seg)
        pieces.append(np.zeros(int(rng.uniform(0.15, 0.35) * RATE), dtype=np.float32))
        x = np.concatenate(pieces)
        x = x / max(np.abs(x).max(), 1e-6) * 0.5
        x = x + (10 ** (noise_db / 20) * 0.5) * rng.standard_normal(len(x)).astype(np.float32)
        u = f"{prefix}{i:04d}"
        spk_id = f"spk{voices.index(voice):02d}"
        audio[u] = x.astype(np.float32)
        text[u] = ws
        spk[u] = spk_id
        starts[u] = segs
    g2p_lex = g2p(words, phone_set="espeak")
    lex = {w: " ".join(g2p_lex[w][0]) for w in words}
    return DigitCorpus(audio, text, spk, starts, lex)


def write_digit_cuts(out_dir: PathLike, corpus: DigitCorpus, name: str = "train") -> Path:
    """Wave files, a lhotse CutSet with supervisions (text, speaker) and stored MFCC (numpy files):
    ``<out_dir>/cuts_<name>.jsonl.gz``."""
    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    recs, sups = [], []
    for u, x in corpus.audio.items():
        p = out / "wav" / f"{u}.wav"
        sf.write(str(p), x, corpus.rate)
        r = Recording.from_file(p, recording_id=u)
        recs.append(r)
        sups.append(SupervisionSegment(id=u, recording_id=u, start=0.0, duration=r.duration,
                                       text=" ".join(corpus.text[u]), speaker=corpus.spk[u]))
    cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings(recs),
                                 supervisions=SupervisionSet.from_segments(sups))
    cuts = cuts.compute_and_store_features(extractor=Mfcc(MfccConfig()), storage_path=str(out / f"storage_{name}"),
                                           storage_type=NumpyFilesWriter, num_jobs=1)
    path = out / f"cuts_{name}.jsonl.gz"
    cuts.to_file(path)
    return path
