"""Statistics of pseudo-labels, per shard and in total.

All statistics are computed from what is **stored** (float16 probabilities and mass), in float64, so a
re-run or a merge gives the same numbers bit for bit:

* ``mean_top1``: mean over frames of the teacher's top-1 posterior (of the full softmax, not renormalised);
* ``mean_entropy``: mean over frames of the entropy, in nats, of the **renormalised top-k** distribution
  (the distribution the student is trained on), not of the full posterior;
* ``mean_mass``: mean over frames of the probability mass the top k held.

Utterances dropped by the confidence filter (mean top-1 under the threshold) and cuts skipped because
the teacher could not process them are listed with their ids and counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np


def frame_stats(probs: np.ndarray, mass: np.ndarray) -> Dict[str, float]:
    """Sums over the frames of one utterance: top1, entropy of the renormalised top-k, mass."""
    p = np.asarray(probs, dtype=np.float64)
    m = np.asarray(mass, dtype=np.float64)
    s = np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    q = p / s
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0).sum(axis=1)
    return {"top1_sum": float(p[:, 0].sum()) if p.size else 0.0, "entropy_sum": float(ent.sum()),
            "mass_sum": float(m.sum())}


@dataclass
class LabelStats:
    utts: int = 0
    frames: int = 0
    top1_sum: float = 0.0
    entropy_sum: float = 0.0
    mass_sum: float = 0.0
    skipped: List[Dict] = field(default_factory=list)  # {"id", "reason"}
    filtered: List[Dict] = field(default_factory=list)  # {"id", "mean_top1", "frames"}

    def add_utt(self, frames: int, sums: Dict[str, float]) -> None:
        self.utts += 1
        self.frames += int(frames)
        self.top1_sum += sums["top1_sum"]
        self.entropy_sum += sums["entropy_sum"]
        self.mass_sum += sums["mass_sum"]

    def merge(self, other: "LabelStats") -> "LabelStats":
        return LabelStats(self.utts + other.utts, self.frames + other.frames, self.top1_sum + other.top1_sum,
                          self.entropy_sum + other.entropy_sum, self.mass_sum + other.mass_sum,
                          self.skipped + other.skipped, self.filtered + other.filtered)

    def to_dict(self) -> Dict:
        n = max(self.frames, 1)
        return {"utts": self.utts, "frames": self.frames,
                "mean_top1": self.top1_sum / n, "mean_entropy": self.entropy_sum / n,
                "mean_mass": self.mass_sum / n,
                "top1_sum": self.top1_sum, "entropy_sum": self.entropy_sum, "mass_sum": self.mass_sum,
                "num_skipped": len(self.skipped), "num_filtered": len(self.filtered),
                "filtered_frames": sum(int(f["frames"]) for f in self.filtered)}

    @classmethod
    def from_dict(cls, d: Dict, skipped=(), filtered=()) -> "LabelStats":
        return cls(int(d["utts"]), int(d["frames"]), float(d["top1_sum"]), float(d["entropy_sum"]),
                   float(d["mass_sum"]), list(skipped), list(filtered))


def summary_line(d: Dict) -> str:
    return (f"{d['utts']} utts, {d['frames']} frames, mean top-1 {d['mean_top1']:.3f}, "
            f"mean entropy (renormalised top-k) {d['mean_entropy']:.3f} nats, mass kept {d['mean_mass']:.3f}, "
            f"{d['num_skipped']} skipped, {d['num_filtered']} filtered by confidence")
