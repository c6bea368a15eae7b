"""What the data loaders of later stages call: stored features of a cut, checked, normalised, stacked."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np

from asrkit.features.cmvn import (STD_FLOOR, CmvnStats, accumulate_speaker_cmvn, apply_cmvn, check_norm, speaker_of,
                                  utterance_cmvn)
from asrkit.features.deltas import add_deltas
from asrkit.features.stack import num_frames, stack_frames


def load_frames(cut) -> np.ndarray:
    """(n, D) float32 stored 10 ms features of ``cut``, n = the frame rule for ``cut.duration``."""
    if not cut.has_features:
        raise ValueError(f"cut {cut.id} has no features (run asrkit.bin.compute_features)")
    feats = cut.load_features()
    n = num_frames(cut.duration, cut.features.sampling_rate)
    if feats.shape[0] != n:  # lhotse already forgives one frame; more is a broken manifest
        raise ValueError(f"cut {cut.id}: {feats.shape[0]} stored frames, the frame rule says {n} "
                         f"for {cut.duration}s")
    return np.asarray(feats, dtype=np.float32)


def load_stacked_features(cut, cmvn: Optional[CmvnStats] = None) -> np.ndarray:
    """(T, 192) float32: the cut's 64-dim fbank, CMVN-normalised at 10 ms (if given), stacked x3."""
    feats = load_frames(cut)
    if cmvn is not None:
        feats = apply_cmvn(feats, cmvn)
    return stack_frames(feats)


def load_mfcc_with_deltas(cut, order: int = 2, window: int = 2) -> np.ndarray:
    """(n, 39) float32: the cut's 13 MFCC with deltas and delta-deltas (Kaldi's add-deltas)."""
    return add_deltas(load_frames(cut), order=order, window=window)


class FeatureReader:
    """Loads network inputs for cuts: ``reader(cut) -> (T, 192) float32`` (normalised, stacked).

    Holds the CMVN statistics as float32 mean / inverse std once, so loaders of every stage share the
    same arithmetic. ``stack=False`` gives the normalised 10 ms frames (n, 64).

    ``norm`` (the network conf's ``cmvn_mode`` key, recorded in its checkpoints): ``global`` normalises with
    ``cmvn`` (data/cmvn.npz); ``utterance`` with each cut's own mean and standard deviation; ``speaker``
    with those of the cut's speaker (:func:`asrkit.features.cmvn.speaker_of`) over the set being read,
    ``speaker_stats`` (:meth:`with_norm` accumulates them). The same float32 arithmetic in every mode.
    """

    def __init__(self, cmvn: Union[CmvnStats, str, Path, None] = None, stack: bool = True, norm: str = "global",
                 speaker_stats: Optional[Dict[str, CmvnStats]] = None):
        if isinstance(cmvn, (str, Path)):
            cmvn = CmvnStats.load(cmvn)
        self.cmvn = cmvn
        self.stack = stack
        self.norm = check_norm(norm)
        if norm == "speaker" and speaker_stats is None:
            raise ValueError("cmvn_mode 'speaker' needs the speakers' statistics: FeatureReader.with_norm(norm, cuts)")
        self.speaker_stats = speaker_stats
        if cmvn is not None:
            self._mean = cmvn.mean.astype(np.float32)
            self._inv_std = (1.0 / cmvn.std).astype(np.float32)

    def with_norm(self, norm: str, *cut_sources) -> "FeatureReader":
        """This reader with normalisation ``norm``; ``speaker``: statistics of every speaker of the cuts of
        ``cut_sources`` (manifest paths, lists of them, CutSets, lists of cuts; None ignored), one extra
        pass over their features. Returns ``self`` when nothing changes."""
        check_norm(norm)
        if norm == self.norm and (norm != "speaker" or self.speaker_stats is not None):
            return self
        stats = None
        if norm == "speaker":
            stats = accumulate_speaker_cmvn(c for src in cut_sources if src is not None for c in _iter_cuts(src))
        return FeatureReader(self.cmvn, self.stack, norm, stats)

    @property
    def dim(self) -> Optional[int]:
        if self.cmvn is None:
            return None
        return self.cmvn.dim * (3 if self.stack else 1)

    def _stats_of(self, cut, feats: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """float32 (mean, 1 / std) for ``cut`` under the per-speaker / per-utterance modes."""
        floor = self.cmvn.std_floor if self.cmvn is not None else STD_FLOOR
        if self.norm == "utterance":
            st = utterance_cmvn(feats, floor)
        else:
            spk = speaker_of(cut)
            st = self.speaker_stats.get(spk)
            if st is None:
                raise ValueError(f"cut {cut.id}: speaker {spk!r} has no statistics (cmvn_mode 'speaker': build the "
                                 f"reader with FeatureReader.with_norm over the cuts it reads)")
        return st.mean.astype(np.float32), (1.0 / st.std).astype(np.float32)

    def frames(self, cut) -> np.ndarray:
        return self.normalise(cut, load_frames(cut))

    def normalise(self, cut, feats: np.ndarray) -> np.ndarray:
        """The stored frames ``feats`` of ``cut`` (``load_frames``) normalised as this reader does: for a
        loader that carries the frames itself (training shards); ``cut`` needs ``id`` (and ``supervisions``
        in the ``speaker`` mode)."""
        if self.norm != "global":
            if len(feats) == 0:
                return feats
            mean, inv_std = self._stats_of(cut, feats)
            if feats.shape[1] != len(mean):
                raise ValueError(f"cut {cut.id}: features of dim {feats.shape[1]}, CMVN of dim {len(mean)}")
            return (feats - mean) * inv_std
        if self.cmvn is not None:
            if feats.shape[1] != self.cmvn.dim:
                raise ValueError(f"cut {cut.id}: features of dim {feats.shape[1]}, CMVN of dim {self.cmvn.dim}")
            feats = (feats - self._mean) * self._inv_std
        return feats

    def __call__(self, cut) -> np.ndarray:
        feats = self.frames(cut)
        return stack_frames(feats) if self.stack else feats

    def from_frames(self, cut, feats: np.ndarray) -> np.ndarray:
        """What ``reader(cut)`` gives, from the cut's stored frames already read."""
        feats = self.normalise(cut, feats)
        return stack_frames(feats) if self.stack else feats


def _iter_cuts(src):
    """Cuts of a manifest path, a list of manifest paths, or an iterable of cuts (a CutSet, a list)."""
    from asrkit.data.cutstore import as_sources
    from asrkit.data.lazy import open_cuts

    paths = as_sources(src)
    if paths is None:
        yield from src
        return
    for p in paths:
        yield from open_cuts(p)
