"""Features and transcripts of the GMM system.

The GMM system sees 13 MFCC at 10 ms with **per-speaker cepstral mean normalisation** (Kaldi's default
for GMM recipes: ``apply-cmvn --norm-vars=false --utt2spk``; variances are left alone) followed by deltas
and delta-deltas (``add-deltas``, 39 dims). ``cmn="utt"`` normalises per utterance (where speakers are
unknown), ``cmn="none"`` not at all. Speakers come from the cut's first supervision (``speaker``); a cut
without one is its own speaker.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from asrkit.data.lazy import open_cuts
from asrkit.features.deltas import add_deltas

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass
class FeatConfig:
    cmn: str = "speaker"  # speaker | utt | none
    delta_order: int = 2
    delta_window: int = 2

    def __post_init__(self) -> None:
        if self.cmn not in ("speaker", "utt", "none"):
            raise ValueError(f"cmn must be speaker, utt or none, not {self.cmn!r}")


@dataclass
class Corpus:
    """What training and alignment read: per utterance features (T, 39), words, speaker."""

    feats: Dict[str, np.ndarray]
    text: Dict[str, List[str]] = field(default_factory=dict)
    spk: Dict[str, str] = field(default_factory=dict)
    ref_phones: Dict[str, list] = field(default_factory=dict)  # utt -> [(phone, start_s, dur_s)] if known

    @property
    def utts(self) -> List[str]:
        return list(self.feats)

    @property
    def num_frames(self) -> int:
        return int(sum(len(f) for f in self.feats.values()))


def make_features(raw: Dict[str, np.ndarray], spk: Optional[Dict[str, str]] = None,
                  config: FeatConfig = FeatConfig()) -> Dict[str, np.ndarray]:
    """Raw 13-dim MFCC per utterance -> CMN (per speaker / utterance) -> deltas. float32 out."""
    means: Dict[str, np.ndarray] = {}
    if config.cmn == "speaker":
        spk = spk or {}
        acc: Dict[str, list] = {}
        for u, f in raw.items():
            s = spk.get(u, u)
            a = acc.setdefault(s, [np.zeros(f.shape[1]), 0])
            a[0] += f.sum(0, dtype=np.float64)
            a[1] += len(f)
        spk_mean = {s: a[0] / max(a[1], 1) for s, a in acc.items()}
        means = {u: spk_mean[spk.get(u, u)] for u in raw}
    elif config.cmn == "utt":
        means = {u: f.mean(0, dtype=np.float64) if len(f) else 0.0 for u, f in raw.items()}
    out = {}
    for u, f in raw.items():
        f = np.asarray(f, dtype=np.float64)
        if u in means:
            f = f - means[u]
        out[u] = add_deltas(f, config.delta_order, config.delta_window) if config.delta_order > 0 \
            else f.astype(np.float32)
    return out


def load_corpus(cuts: Union[PathLike, Iterable], config: FeatConfig = FeatConfig(),
                need_text: bool = True) -> Corpus:
    """Read a lhotse CutSet (or its manifest path): stored MFCC, the supervisions' text and speaker, and
    ``alignment["phone"]`` where present. Cuts without features are errors; cuts without text are
    skipped (counted, logged) when ``need_text``."""
    from lhotse import CutSet  # not at the top: lhotse only when cuts are read (import cost, asrkit.gmm doc)

    if isinstance(cuts, (str, Path)):
        if not Path(cuts).exists():
            raise FileNotFoundError(f"cuts manifest not found: {cuts}")
        cuts = CutSet.from_file(cuts)
    raw, text, spk, ref = {}, {}, {}, {}
    no_text = 0
    for cut in cuts:
        if not cut.has_features:
            raise ValueError(f"cut {cut.id} has no features (run asrkit.bin.compute_features)")
        sups = list(cut.supervisions)
        words = " ".join(s.text for s in sups if s.text).split()
        if need_text and not words:
            no_text += 1
            continue
        raw[cut.id] = np.asarray(cut.load_features(), dtype=np.float32)
        text[cut.id] = words
        if sups and sups[0].speaker:
            spk[cut.id] = sups[0].speaker
        items = []
        for s in sups:
            if s.alignment and "phone" in s.alignment:
                items += [(a.symbol, float(a.start) - float(cut.start) + 0.0, float(a.duration))
                          for a in s.alignment["phone"]]
        if items:
            ref[cut.id] = items
    if no_text:
        log.warning("%d cuts without a transcript were skipped", no_text)
    if not raw:
        raise ValueError("no usable cuts (all lack transcripts?)")
    return Corpus(make_features(raw, spk, config), text, spk, ref)


def _usable(cut, need_text: bool) -> bool:
    if not cut.has_features:
        raise ValueError(f"cut {cut.id} has no features (run asrkit.bin.compute_features)")
    return not need_text or bool(" ".join(s.text for s in cut.supervisions if s.text).split())


def iter_features(cuts: Union[PathLike, Iterable], config: FeatConfig = FeatConfig(),
                  need_text: bool = True) -> Iterator[Tuple[str, np.ndarray]]:
    """``(cut id, features)`` as :func:`load_corpus` computes them (the same CMN and deltas, bit for
    bit), one utterance at a time, for passes that need not hold the corpus (statistics accumulation).

    ``cuts``: a manifest path (read lazily) or an iterable that can be iterated twice. Per-speaker CMN
    takes two passes: the speakers' sums first (memory grows with the speakers, not the frames), then
    the normalised features. Cuts without text are skipped (counted, logged) when ``need_text``."""
    def cutset():
        return open_cuts(cuts) if isinstance(cuts, (str, Path)) else cuts

    spk_mean: Dict[str, np.ndarray] = {}
    if config.cmn == "speaker":
        acc: Dict[str, list] = {}
        for cut in cutset():
            if not _usable(cut, need_text):
                continue
            f = np.asarray(cut.load_features(), dtype=np.float32)
            s = _speaker(cut) or cut.id
            a = acc.setdefault(s, [np.zeros(f.shape[1]), 0])
            a[0] += f.sum(0, dtype=np.float64)
            a[1] += len(f)
        spk_mean = {s: a[0] / max(a[1], 1) for s, a in acc.items()}
    no_text = n = 0
    for cut in cutset():
        if not _usable(cut, need_text):
            no_text += 1
            continue
        raw = np.asarray(cut.load_features(), dtype=np.float32)
        f = np.asarray(raw, dtype=np.float64)
        if config.cmn == "speaker":
            f = f - spk_mean[_speaker(cut) or cut.id]
        elif config.cmn == "utt":
            f = f - (raw.mean(0, dtype=np.float64) if len(raw) else 0.0)
        n += 1
        yield cut.id, (add_deltas(f, config.delta_order, config.delta_window) if config.delta_order > 0
                       else f.astype(np.float32))
    if no_text:
        log.warning("%d cuts without a transcript were skipped", no_text)
    if not n:
        raise ValueError("no usable cuts (all lack transcripts?)")


def _speaker(cut) -> Optional[str]:
    sups = list(cut.supervisions)
    return sups[0].speaker if sups and sups[0].speaker else None
