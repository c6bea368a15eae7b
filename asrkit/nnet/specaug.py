"""SpecAugment for the stacked network inputs: time and frequency masks, in training batches only.

The networks read 30 ms frames of three stacked 10 ms frames of 64 log-mel bins (192 dims,
:mod:`asrkit.features.stack`), already CMVN-normalised. lhotse's ``lhotse.dataset.SpecAugment`` would
treat the 192 dims as one spectrum (a frequency mask over "bins" 60-70 would straddle two stacked copies
and leave the same bins of the other copies untouched) and draws from the global RNGs, so it is not used.
Here a batch ``(B, T, 3 * F)`` is viewed as ``(B, 3 * T, F)`` 10 ms frames:

* a frequency mask zeroes bins ``[f0, f0 + w)`` of every 10 ms frame of the row (so of every stacked copy);
* a time mask zeroes 10 ms frames ``[t0, t0 + w)`` of the row, inside its ``3 * length`` frames;
* widths are drawn uniformly in ``[0, width]`` (the SpecAugment paper's rule), a time width capped at
  ``time_max_fraction`` of the row; zero is the masked value, the features' mean after CMVN.

Masks are drawn on the CPU from a generator seeded by ``(seed, step, worker)``, never from torch's global
RNG: dropout masks stay as they were, and a run resumed from a checkpoint draws the same masks as an
uninterrupted one. The trainer applies :class:`SpecAugment` in its training step only: evaluation,
pseudo-labelling and decoding never see it.

Configuration: flat keys of the training config (conf/teacher.yaml, conf/student.yaml, or
``--specaug-time-masks 2`` ...), so that every command-line flag stays a scalar; off while both mask
counts are 0 (the default)::

    specaug_time_masks: 2         # time masks per row
    specaug_time_width: 20        # widest time mask, 10 ms frames
    specaug_freq_masks: 2         # frequency masks per row
    specaug_freq_width: 8         # widest frequency mask, log-mel bins (of 64)
    specaug_time_max_fraction: 0.2  # no time mask wider than this share of the row
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional

import torch

from asrkit.features.extract import NUM_MEL_BINS as NUM_BINS  # log-mel bins of one 10 ms frame
from asrkit.features.stack import STACK


@dataclass(frozen=True)
class SpecAugConfig:
    time_masks: int = 2
    time_width: int = 20  # 10 ms frames, the widest time mask
    freq_masks: int = 2
    freq_width: int = 8  # log-mel bins, the widest frequency mask
    time_max_fraction: float = 0.2  # no time mask wider than this share of the row's frames

    @classmethod
    def from_train_config(cls, cfg: Any) -> Optional["SpecAugConfig"]:
        """The ``specaug_*`` fields of a training config (None when both mask counts are 0), checked
        against its chunk size."""
        kw = {f.name: getattr(cfg, "specaug_" + f.name) for f in fields(cls) if hasattr(cfg, "specaug_" + f.name)}
        out = cls(**kw)
        out.check(chunk_size=int(getattr(cfg, "chunk_size", 0) or 0))
        if not (out.time_masks or out.freq_masks):
            return None
        dim = int(getattr(cfg, "input_dim", STACK * NUM_BINS))
        if dim != STACK * NUM_BINS:
            raise ValueError(f"specaug_* masks {STACK} stacked frames of {NUM_BINS} log-mel bins "
                             f"({STACK * NUM_BINS} dims); the network's input_dim is {dim}")
        return out

    def check(self, num_bins: int = NUM_BINS, chunk_size: int = 0) -> None:
        """Refuse options that make no sense, naming the option."""
        for name in ("time_masks", "time_width", "freq_masks", "freq_width"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"specaug_{name} must be an integer >= 0, not {v!r}")
        if not 0.0 < float(self.time_max_fraction) <= 1.0:
            raise ValueError(f"specaug_time_max_fraction must be in (0, 1], not {self.time_max_fraction!r}")
        if self.freq_width > num_bins:
            raise ValueError(f"specaug_freq_width {self.freq_width} is wider than the {num_bins} log-mel bins")
        if chunk_size > 0 and self.time_width > STACK * chunk_size:
            raise ValueError(f"specaug_time_width {self.time_width} (10 ms frames) is wider than a training chunk "
                             f"of {chunk_size} frames of 30 ms ({STACK * chunk_size} frames of 10 ms)")

    def to_dict(self) -> Dict:
        return asdict(self)


class SpecAugment:
    """``aug(features (B, T, STACK*F), lengths (B,), step, worker=0) -> masked copy`` (see the module doc)."""

    def __init__(self, cfg: SpecAugConfig, seed: int = 0, num_bins: int = NUM_BINS):
        cfg.check(num_bins)
        self.cfg, self.seed, self.num_bins = cfg, int(seed), num_bins

    def generator(self, step: int, worker: int = 0) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed((self.seed * 1_000_003 + int(step)) * 1009 + int(worker))
        return g

    def masks(self, lengths: torch.Tensor, T: int, step: int, worker: int = 0):
        """(B, STACK*T) bool time mask and (B, F) bool frequency mask (True: zeroed), on the CPU; every
        random number of the batch drawn at once (a few tensors, not a Python loop over rows)."""
        c, F = self.cfg, self.num_bins
        B = int(lengths.shape[0])
        g = self.generator(step, worker)
        n = STACK * lengths.to(torch.int64).cpu()  # 10 ms frames of each row
        # frequency masks: width ~ U{0..freq_width}, start ~ U{0..F-width}
        fw = torch.randint(0, c.freq_width + 1, (B, c.freq_masks), generator=g)
        f0 = (torch.rand(B, c.freq_masks, generator=g, dtype=torch.float64) * (F - fw + 1)).floor().long()
        bins = torch.arange(F)[None, None, :]
        fmask = ((bins >= f0[..., None]) & (bins < (f0 + fw)[..., None])).any(1)
        # time masks: width ~ U{0..cap}, cap = min(time_width, floor(fraction * n)), start ~ U{0..n-width}
        cap = torch.minimum(torch.full_like(n, c.time_width), (c.time_max_fraction * n.double()).floor().long())
        u = torch.rand(B, c.time_masks, generator=g, dtype=torch.float64)
        tw = (u * (cap[:, None] + 1)).floor().long()
        t0 = (torch.rand(B, c.time_masks, generator=g, dtype=torch.float64)
              * (n[:, None] - tw + 1).clamp(min=1)).floor().long()
        frames = torch.arange(STACK * T)[None, None, :]
        tmask = ((frames >= t0[..., None]) & (frames < (t0 + tw)[..., None])).any(1)
        return tmask, fmask

    def __call__(self, features: torch.Tensor, lengths: torch.Tensor, step: int, worker: int = 0) -> torch.Tensor:
        B, T, D = features.shape
        F = self.num_bins
        if D != STACK * F:
            raise ValueError(f"SpecAugment expects {STACK} stacked frames of {F} bins ({STACK * F} dims), got {D}")
        tmask, fmask = self.masks(lengths.cpu(), T, step, worker)
        keep = ~(tmask[:, :, None] | fmask[:, None, :])  # (B, STACK*T, F)
        keep = keep.to(device=features.device).reshape(B, T, D)
        return features * keep.to(features.dtype)


def make_specaug(cfg: Any) -> Optional[SpecAugment]:
    """A :class:`SpecAugment` for a training config (its ``specaug_*`` fields and ``seed``), or None (off)."""
    sa = SpecAugConfig.from_train_config(cfg)
    return SpecAugment(sa, int(getattr(cfg, "seed", 0))) if sa is not None else None
