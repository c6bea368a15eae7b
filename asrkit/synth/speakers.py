"""Synthetic speakers: espeak-ng voice + variant + pitch + pitch range + speaking rate.

Every speaker of the corpus gets its own (voice, variant) pair, so splits are speaker-disjoint and the
dev/test speakers use voice/variant pairs that no training speaker uses. Babble speakers (for the noisy
conditions) come from the pairs left over.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

# English voices of espeak-ng 1.51 that espeak_SetVoiceByName accepts ("en" is British English).
DEFAULT_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-029", "en-us-nyc")
VOICE_ALIASES = {"en-gb": "en"}
# Variants that sound like a person (whisper, robots, 'Demonic', 'fast' and the like are left out).
DEFAULT_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie",
    "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "Denis", "Diogo", "ed",
    "edward", "Gene", "gustave", "Henrique", "Hugo", "iven", "iven2", "iven3", "Jacky", "john",
    "Lee", "linda", "Marco", "Mario", "max", "Michael", "michel", "miguel", "Mike", "Nguyen",
    "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph",
    "travis", "victor", "zac", "grandma", "grandpa",
)
SPLITS = ("train_sup", "train_unsup", "dev", "test_clean", "test_noisy")
SPLIT_PREFIX = {"train_sup": "trs", "train_unsup": "tru", "dev": "dev", "test_clean": "tsc",
                "test_noisy": "tsn", "babble": "bab"}


@dataclass(frozen=True)
class Speaker:
    spk: str
    split: str
    voice: str
    variant: str
    pitch: int  # espeak base pitch 0..100 (50 is the voice's default)
    pitch_range: int  # espeak pitch range 0..100
    rate: int  # words per minute (espeak default 175)

    @property
    def voice_name(self) -> str:
        return f"{self.voice}+{self.variant}"

    def tsv(self) -> str:
        return f"{self.spk}\t{self.split}\t{self.voice}\t{self.variant}\t{self.pitch}\t{self.rate}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def make_speakers(
    counts: Dict[str, int],
    seed: int,
    voices: Sequence[str] = DEFAULT_VOICES,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    pitch_spread: float = 20.0,
    rate_spread: float = 0.15,
    base_rate: int = 165,
    num_babble: int = 12,
) -> Tuple[Dict[str, List[Speaker]], List[Speaker]]:
    """Speakers per split (``counts``: split → number) with pairwise-distinct (voice, variant) pairs.

    Pitch is 50 ± ``pitch_spread`` (uniform), pitch range 30..90, rate ``base_rate`` · (1 ± ``rate_spread``).
    Test and dev speakers are drawn first from the shuffled pairs, then the training ones, then babble
    speakers (which reuse pairs only if the pool is exhausted). Depends only on the arguments.
    """
    voices = [VOICE_ALIASES.get(v, v) for v in voices]
    pairs = [(v, var) for v in voices for var in variants]
    need = sum(counts.values())
    if need > len(pairs):
        raise ValueError(f"{need} speakers asked for but only {len(pairs)} voice/variant pairs "
                         f"({len(voices)} voices x {len(variants)} variants)")
    rng = np.random.default_rng([seed, 7919])
    order = rng.permutation(len(pairs))
    pairs = [pairs[i] for i in order]
    out: Dict[str, List[Speaker]] = {}
    pos = 0

    def draw(split: str, k: int, i: int) -> Speaker:
        v, var = pairs[k % len(pairs)]
        r = np.random.default_rng([seed, 104729, SPLITS.index(split) if split in SPLITS else 99, i])
        pitch = int(round(np.clip(50 + r.uniform(-pitch_spread, pitch_spread), 5, 95)))
        prange = int(r.integers(30, 91))
        rate = int(round(base_rate * (1 + r.uniform(-rate_spread, rate_spread))))
        return Speaker(f"{SPLIT_PREFIX[split]}{i:03d}", split, v, var, pitch, prange, max(80, rate))

    for split in ("test_noisy", "test_clean", "dev", "train_sup", "train_unsup"):
        n = counts.get(split, 0)
        out[split] = [draw(split, pos + i, i) for i in range(n)]
        pos += n
    for split in counts:
        if split not in out:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    babble = [draw("babble", pos + i, i) for i in range(num_babble)]
    return {s: out[s] for s in SPLITS if s in counts}, babble
