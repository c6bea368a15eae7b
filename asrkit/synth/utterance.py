"""One synthetic utterance: text → espeak → 16 kHz → condition (noise / reverberation) → FLAC + labels.

Every random choice comes from ``numpy.random.default_rng([seed, split code, utterance index, purpose])``,
so an utterance is the same whichever worker makes it and in whatever order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from asrkit.synth import acoustics
from asrkit.synth.espeak import NATIVE_RATE, Espeak, SynthMismatch, SynthResult, run_pristine
from asrkit.synth.phones import is_pause, to_kaldi_phone
from asrkit.synth.speakers import Speaker
from asrkit.synth.text import SentenceGenerator

CONDITIONS = ("clean", "noisy", "reverb", "noisy_reverb")
SPLIT_CODE = {"train_sup": 1, "train_unsup": 2, "dev": 3, "test_clean": 4, "test_noisy": 5, "lm_text": 6, "babble": 9}
# purposes of the random streams of one utterance
TEXT, COND, SIGNAL = 0, 1, 2
MAX_ATTEMPTS = 8


def utt_rng(seed: int, split: str, index: int, purpose: int, attempt: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_CODE[split], index, purpose, attempt])


@dataclass
class UttSpec:
    """What the planner decides before synthesis (cheap, done in the main process)."""
    split: str
    index: int
    utt: str
    speaker: Speaker
    condition: str


@dataclass
class AcousticConfig:
    sample_rate: int = 16000
    snr_range: Tuple[float, float] = (0.0, 20.0)
    rt60_range: Tuple[float, float] = (0.2, 0.8)
    drr_range: Tuple[float, float] = (-6.0, 6.0)
    babble_prob: float = 0.6  # chance that babble (not only coloured noise) is in the noise
    noise_exponent_range: Tuple[float, float] = (0.0, 2.0)  # white .. brown
    lead_silence: Tuple[float, float] = (0.10, 0.40)  # seconds of silence added before the speech
    trail_silence: Tuple[float, float] = (0.10, 0.40)
    peak_range: Tuple[float, float] = (0.25, 0.9)  # final peak level, fraction of full scale


def sentence_for(gen: SentenceGenerator, seed: int, split: str, index: int, attempt: int = 0) -> List[str]:
    return gen.sentence(utt_rng(seed, split, index, TEXT, attempt))


def _synth_attempts(es: Espeak, gen: SentenceGenerator, seed: int, split: str, index: int,
                    speaker: Speaker) -> Tuple[List[str], SynthResult, int]:
    es.set_voice(speaker.voice, speaker.variant, speaker.rate, speaker.pitch, speaker.pitch_range)
    last: Optional[Exception] = None
    for attempt in range(MAX_ATTEMPTS):
        words = sentence_for(gen, seed, split, index, attempt)
        try:
            return words, es.synth(" ".join(words)), attempt + 1
        except SynthMismatch as e:
            last = e
    raise RuntimeError(f"{split} utterance {index} ({speaker.voice_name}): no sentence matched espeak's "
                       f"events in {MAX_ATTEMPTS} attempts; last: {last}")


def synthesise_sentence(es: Espeak, gen: SentenceGenerator, seed: int, split: str, index: int,
                        speaker: Speaker) -> Tuple[List[str], SynthResult, int]:
    """Synthesise the utterance's sentence, drawing a new one (attempt + 1) if espeak's events do not
    match its words. Returns (words, result, attempts used).

    The synthesis runs in a fork of the freshly initialised library (:func:`run_pristine`), so the
    audio does not depend on what this process synthesised before. The voice is loaded in the child
    too: loading voices one after the other in the parent leaves settings of earlier voices behind.
    Voices are checked once, in the main process, before the workers start.
    """
    return run_pristine(es, _synth_attempts, gen, seed, split, index, speaker)


def segment(result: SynthResult, out_rate: int, offset: int, n_out: int) -> List[Tuple[int, int, str, int]]:
    """Phone intervals on the output time line: (start, end, kaldi phone, word), samples at ``out_rate``.

    A phone ends where the next event (phone or pause) starts, or at the end of the audio. Pauses are
    dropped (silence is implicit). A phone that espeak gives no time (same start as the next event)
    shares the following interval equally with it, so every phone has a positive duration.
    """
    ev = result.phones
    total = result.num_samples
    ratio = out_rate / NATIVE_RATE
    bounds = [p.start for p in ev] + [total]
    items = [[bounds[i], bounds[i + 1], p] for i, p in enumerate(ev)]
    # a pause of no length bounds nothing that the next event does not bound already
    items = [it for it in items if it[1] > it[0] or not is_pause(it[2].phone)]
    i = 0
    while i < len(items):
        if items[i][1] > items[i][0]:
            i += 1
            continue
        j = i
        while j < len(items) and items[j][1] <= items[j][0]:
            j += 1
        if j < len(items):
            group, nxt = items[i:j + 1], j + 1
        else:  # zero-length events at the very end: share the last positive interval
            k = i - 1
            if k < 0:
                raise ValueError("no phone of the utterance has a duration")
            group, nxt = items[k:], len(items)
        start, end, n = min(g[0] for g in group), max(g[1] for g in group), len(group)
        if end - start < n:
            raise ValueError(f"{n} phones share {end - start} samples")
        for m, g in enumerate(group):
            g[0] = start + (end - start) * m // n
            g[1] = start + (end - start) * (m + 1) // n
        i = nxt
    out = []
    for s, e, p in items:
        if is_pause(p.phone):
            continue
        s16 = offset + int(round(s * ratio))
        e16 = offset + int(round(e * ratio))
        e16 = min(e16, n_out)
        if e16 <= s16:
            raise ValueError(f"phone {p.phone} has no duration after conversion ({s}..{e})")
        out.append((s16, e16, to_kaldi_phone(p.phone), p.word))
    return out


def make_babble_clip(es: Espeak, gen: SentenceGenerator, seed: int, index: int, speaker: Speaker,
                     sample_rate: int) -> np.ndarray:
    words, res, _ = synthesise_sentence(es, gen, seed, "babble", index, speaker)
    return acoustics.resample_poly(res.audio.astype(np.float32), sample_rate, NATIVE_RATE)


def render(es: Espeak, gen: SentenceGenerator, spec: UttSpec, seed: int, cfg: AcousticConfig,
           babble_bank: Sequence[np.ndarray], audio_path: Path) -> Dict:
    """Make one utterance, write its FLAC atomically, return its record (text, phones, prons...)."""
    words, res, attempts = synthesise_sentence(es, gen, seed, spec.split, spec.index, spec.speaker)
    sr = cfg.sample_rate
    speech = acoustics.resample_poly(res.audio.astype(np.float32), sr, NATIVE_RATE)
    r = utt_rng(seed, spec.split, spec.index, SIGNAL)
    lead = int(r.uniform(*cfg.lead_silence) * sr)
    trail = int(r.uniform(*cfg.trail_silence) * sr)
    x = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(trail, np.float32)])
    info: Dict = {}
    if spec.condition in ("reverb", "noisy_reverb"):
        x, rt60 = acoustics.reverberate(r, x, cfg.rt60_range, cfg.drr_range, sr)
        info["rt60"] = round(rt60, 3)
    if spec.condition in ("noisy", "noisy_reverb"):
        snr = float(r.uniform(*cfg.snr_range))
        colour = acoustics.coloured_noise(r, len(x), float(r.uniform(*cfg.noise_exponent_range)))
        if babble_bank and r.random() < cfg.babble_prob:
            w = float(r.uniform(0.3, 1.0))
            noise = w * acoustics.babble(r, len(x), babble_bank) + (1 - w) * colour
            info["babble"] = round(w, 3)
        else:
            noise = colour
        x = acoustics.mix_at_snr(x, noise, snr)
        info["snr"] = round(snr, 2)
    peak = float(r.uniform(*cfg.peak_range)) * 32767.0
    m = float(np.max(np.abs(x))) if len(x) else 0.0
    if m > 0:
        x = x * np.float32(peak / m)
    pcm = acoustics.to_int16(x, peak=1.0)
    segs = segment(res, sr, lead, len(pcm))
    audio_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = audio_path.with_name(f".{audio_path.stem}.tmp{os.getpid()}.flac")
    sf.write(str(tmp), pcm, sr, format="FLAC", subtype="PCM_16")
    os.replace(tmp, audio_path)
    prons: Dict[int, List[str]] = {}
    for s, e, ph, w in segs:
        prons.setdefault(w, []).append(ph)
    return {
        "utt": spec.utt,
        "spk": spec.speaker.spk,
        "split": spec.split,
        "condition": spec.condition,
        "words": [w.upper() for w in words],
        "num_samples": int(len(pcm)),
        "phones": [[s, e - s, ph] for s, e, ph, _ in segs],
        "prons": [[words[w].upper(), " ".join(prons[w])] for w in sorted(prons)],
        "attempts": attempts,
        **info,
    }
