"""Global CMVN of the 64-dim fbank: statistics over the ``train_sup`` cuts, applied to every set.

``data/cmvn.npz`` holds ``count`` (frames, float64 scalar), ``sum`` and ``sumsq`` (float64, (64,)),
``mean`` and ``std`` (float64, (64,); ``std = max(sqrt(sumsq/count - mean^2), std_floor)``) and
``std_floor``. Loaders normalise the 10 ms frames and then stack them (:mod:`asrkit.features.stack`);
that equals stacking first and normalising with the statistics tiled three times (:func:`tile_cmvn`).

Besides the global statistics the networks can be normalised per speaker or per utterance
(``cmvn_mode: speaker | utterance`` in the network's conf; :class:`asrkit.features.reader.FeatureReader`),
as Kaldi's ``apply-cmvn --norm-vars=true [--utt2spk]``: :func:`accumulate_speaker_cmvn` gives the
statistics of each speaker of a set (:func:`speaker_of`), :func:`utterance_cmvn` those of one utterance.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Union

import numpy as np

from asrkit.features.stack import STACK
from asrkit.utils.atomic import atomic_path, mark_done

log = logging.getLogger(__name__)

STD_FLOOR = 1e-3  # log-mel bins of digital silence can have a (near-)zero spread


@dataclass
class CmvnStats:
    """Accumulated in float64; ``mean`` / ``std`` derived from the sums (population variance)."""

    count: float
    sum: np.ndarray
    sumsq: np.ndarray
    std_floor: float = STD_FLOOR

    @classmethod
    def zeros(cls, dim: int, std_floor: float = STD_FLOOR) -> "CmvnStats":
        return cls(0.0, np.zeros(dim, np.float64), np.zeros(dim, np.float64), std_floor)

    @property
    def dim(self) -> int:
        return int(self.sum.shape[0])

    def accumulate(self, feats: np.ndarray) -> None:
        x = np.asarray(feats, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"CMVN of dim {self.dim} cannot take features of shape {x.shape}")
        self.count += x.shape[0]
        self.sum += x.sum(axis=0)
        self.sumsq += np.einsum("ij,ij->j", x, x)

    def merge(self, other: "CmvnStats") -> "CmvnStats":
        return CmvnStats(self.count + other.count, self.sum + other.sum, self.sumsq + other.sumsq, self.std_floor)

    @property
    def mean(self) -> np.ndarray:
        if self.count <= 0:
            raise ValueError("CMVN statistics are empty (count 0)")
        return self.sum / self.count

    @property
    def std(self) -> np.ndarray:
        var = np.maximum(self.sumsq / self.count - self.mean**2, 0.0)
        return np.maximum(np.sqrt(var), self.std_floor)

    def tile(self, factor: int = STACK) -> "CmvnStats":
        """The statistics of ``factor`` stacked frames (each block the same): 64 dims -> 192 dims."""
        return CmvnStats(self.count, np.tile(self.sum, factor), np.tile(self.sumsq, factor), self.std_floor)

    def save(self, path: Union[str, Path]) -> None:
        """Write ``path`` (.npz) atomically, with a done marker beside it."""
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, count=np.float64(self.count), sum=self.sum, sumsq=self.sumsq, mean=self.mean,
                         std=self.std, std_floor=np.float64(self.std_floor))
        mark_done(path)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "CmvnStats":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"CMVN statistics not found: {path}")
        with np.load(path) as z:
            missing = {"count", "sum", "sumsq"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: not a CMVN file, missing {sorted(missing)}")
            floor = float(z["std_floor"]) if "std_floor" in z.files else STD_FLOOR
            return cls(float(z["count"]), z["sum"].astype(np.float64), z["sumsq"].astype(np.float64), floor)


NORMS = ("global", "speaker", "utterance")


def check_norm(norm: str) -> str:
    """``norm`` if it is one of :data:`NORMS`, else a ValueError naming the option."""
    if norm not in NORMS:
        raise ValueError(f"cmvn_mode must be one of {', '.join(NORMS)}, not {norm!r}")
    return norm


def speaker_of(cut) -> str:
    """The cut's speaker: its first supervision's, else the cut is its own speaker (as asrkit.gmm.data)."""
    sups = getattr(cut, "supervisions", None) or []
    spk = sups[0].speaker if sups else None
    return spk or cut.id


def utterance_cmvn(feats: np.ndarray, std_floor: float = STD_FLOOR) -> CmvnStats:
    """The statistics of one utterance's frames (float64)."""
    stats = CmvnStats.zeros(feats.shape[1], std_floor)
    stats.accumulate(feats)
    return stats


def accumulate_speaker_cmvn(cuts: Iterable, std_floor: float = STD_FLOOR) -> Dict[str, CmvnStats]:
    """``{speaker: statistics}`` of the stored features of ``cuts`` (one streaming pass; memory grows
    with the speakers, not the frames). Speakers: :func:`speaker_of`."""
    from asrkit.features.reader import load_frames

    out: Dict[str, CmvnStats] = {}
    t0, n = time.perf_counter(), 0
    for cut in cuts:
        feats = load_frames(cut)
        spk = speaker_of(cut)
        if spk not in out:
            out[spk] = CmvnStats.zeros(feats.shape[1], std_floor)
        out[spk].accumulate(feats)
        n += 1
    log.info("speaker cmvn: %d cuts, %d speakers in %.1f s", n, len(out), time.perf_counter() - t0)
    return out


def load_cmvn(path: Union[str, Path]) -> CmvnStats:
    return CmvnStats.load(path)


def tile_cmvn(cmvn: CmvnStats, factor: int = STACK) -> CmvnStats:
    """64-dim statistics -> the 192-dim statistics of three stacked frames."""
    return cmvn.tile(factor)


def apply_cmvn(feats, cmvn: CmvnStats):
    """(n, D) -> (n, D) normalised: ``(x - mean) / std``; numpy float32 out, or torch in -> torch out.

    D may be the statistics' dim or a multiple of it (stacked frames: the statistics are tiled).
    """
    dim = feats.shape[-1]
    if dim % cmvn.dim:
        raise ValueError(f"features of dim {dim} do not match CMVN statistics of dim {cmvn.dim}")
    mean, std = cmvn.mean, cmvn.std
    if dim != cmvn.dim:
        mean, std = np.tile(mean, dim // cmvn.dim), np.tile(std, dim // cmvn.dim)
    if type(feats).__module__.startswith("torch"):
        import torch

        m = torch.as_tensor(mean, dtype=feats.dtype, device=feats.device)
        s = torch.as_tensor(1.0 / std, dtype=feats.dtype, device=feats.device)
        return (feats - m) * s
    return ((np.asarray(feats, dtype=np.float32) - mean.astype(np.float32)) * (1.0 / std).astype(np.float32))


def accumulate_cmvn(cuts: Iterable, dim: int = None, std_floor: float = STD_FLOOR,
                    progress_bar: bool = True) -> CmvnStats:
    """Statistics of the stored features of ``cuts`` (a CutSet with features, or any iterable of cuts)."""
    from tqdm import tqdm

    stats = None
    t0 = time.perf_counter()
    num_cuts = 0
    # len() of a lazy CutSet would read the whole manifest once more just for the progress bar
    total = len(cuts) if hasattr(cuts, "__len__") and not getattr(cuts, "is_lazy", False) else None
    for cut in tqdm(cuts, total=total, desc="cmvn", unit="cut", disable=not progress_bar, mininterval=1.0):
        if not cut.has_features:
            raise ValueError(f"cut {cut.id} has no features: compute them first (asrkit.bin.compute_features)")
        feats = cut.load_features()
        if stats is None:
            stats = CmvnStats.zeros(dim or feats.shape[1], std_floor)
        stats.accumulate(feats)
        num_cuts += 1
    if stats is None or stats.count == 0:
        raise ValueError("no frames to accumulate CMVN statistics from")
    wall = time.perf_counter() - t0
    log.info("cmvn: %d cuts, %d frames, dim %d, in %.1f s, %.0f frames/s", num_cuts, stats.count, stats.dim,
             wall, stats.count / max(wall, 1e-9))
    return stats


def compute_cmvn(cuts, out: Union[str, Path], std_floor: float = STD_FLOOR, overwrite: bool = False,
                 progress_bar: bool = True) -> CmvnStats:
    """Accumulate over ``cuts`` (CutSet or manifest path) and save to ``out``; skip if ``out`` is done."""
    from lhotse import CutSet

    from asrkit.data.lazy import open_cuts

    from asrkit.utils.atomic import is_done

    out = Path(out)
    if is_done(out) and not overwrite:
        log.info("cmvn: %s already done, skipped", out)
        return CmvnStats.load(out)
    if not isinstance(cuts, CutSet):
        cuts = open_cuts(cuts)  # one streaming pass: the cuts are never all in memory
    stats = accumulate_cmvn(cuts, std_floor=std_floor, progress_bar=progress_bar)
    stats.save(out)
    log.info("cmvn: wrote %s (count %d, mean of means %.3f, mean of stds %.3f)", out, stats.count,
             stats.mean.mean(), stats.std.mean())
    return stats
