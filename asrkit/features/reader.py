"""What the data loaders of later stages call: stored features of a cut, checked, normalised, stacked."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np

from asrkit.features.cmvn import CmvnStats, apply_cmvn
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
    """

    def __init__(self, cmvn: Union[CmvnStats, str, Path, None] = None, stack: bool = True):
        if isinstance(cmvn, (str, Path)):
            cmvn = CmvnStats.load(cmvn)
        self.cmvn = cmvn
        self.stack = stack
        if cmvn is not None:
            self._mean = cmvn.mean.astype(np.float32)
            self._inv_std = (1.0 / cmvn.std).astype(np.float32)

    @property
    def dim(self) -> Optional[int]:
        if self.cmvn is None:
            return None
        return self.cmvn.dim * (3 if self.stack else 1)

    def frames(self, cut) -> np.ndarray:
        feats = load_frames(cut)
        if self.cmvn is not None:
            if feats.shape[1] != self.cmvn.dim:
                raise ValueError(f"cut {cut.id}: features of dim {feats.shape[1]}, CMVN of dim {self.cmvn.dim}")
            feats = (feats - self._mean) * self._inv_std
        return feats

    def __call__(self, cut) -> np.ndarray:
        feats = self.frames(cut)
        return stack_frames(feats) if self.stack else feats
