"""Training statistics as values: one update's (:class:`StepStats`), running totals (:class:`Totals`) and
the totals of a stretch of training, overall and per batch kind (:class:`Meter`: an epoch, or the
window between two log lines)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, Optional


@dataclass(frozen=True)
class StepStats:
    """What one update trained on and how it went (a skipped update: no frames)."""
    loss_sum: float
    frames: int
    correct: int
    lr: float
    grad_norm: float = float("nan")
    kind: str = "hard"


@dataclass
class Totals:
    """Summed loss, scored frames, correct frames and batches; ``loss`` and ``acc`` per frame."""
    loss_sum: float = 0.0
    frames: int = 0
    correct: int = 0
    batches: int = 0

    def add(self, st: StepStats) -> None:
        self.loss_sum += st.loss_sum
        self.frames += st.frames
        self.correct += st.correct
        self.batches += 1

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.frames)

    @property
    def acc(self) -> float:
        return self.correct / max(1, self.frames)


@dataclass
class Meter:
    """Totals since ``t0``, and per batch kind when ``per_kind`` (kinds in the order first seen)."""
    per_kind: bool = False
    total: Totals = field(default_factory=Totals)
    kinds: Dict[str, Totals] = field(default_factory=dict)
    t0: float = field(default_factory=time.perf_counter)

    def add(self, st: StepStats) -> None:
        self.total.add(st)
        if self.per_kind:
            self.kinds.setdefault(st.kind, Totals()).add(st)

    def seconds(self, now: Optional[float] = None) -> float:
        return (time.perf_counter() if now is None else now) - self.t0

    def frames_per_second(self) -> float:
        return self.total.frames / max(self.seconds(), 1e-9)
