"""The learning rate of a run: ``warmup`` (linear warm-up, then exponential decay with a half-life in
steps), ``newbob`` (halving driven by the dev loss) or ``constant`` (module doc of asrkit/nnet/train.py)."""
from __future__ import annotations

from typing import Dict, Optional

from asrkit.nnet.train_config import TrainConfig


class LrScheduler:
    """Learning rate as a function of the step (warmup), or of the dev losses seen so far (newbob)."""

    def __init__(self, cfg: TrainConfig):
        if cfg.scheduler not in ("warmup", "newbob", "constant"):
            raise ValueError(f"unknown scheduler {cfg.scheduler!r}")
        self.cfg = cfg
        self.scale = 1.0  # newbob's factor
        self.halving = False
        self.stop = False
        self.prev_dev_loss: Optional[float] = None

    def lr(self, step: int) -> float:
        c = self.cfg
        if c.scheduler == "warmup":
            lr = c.lr * min(1.0, step / max(1, c.warmup_steps))
            if c.decay_half_life > 0 and step > c.warmup_steps:
                lr = max(c.min_lr, c.lr * 0.5 ** ((step - c.warmup_steps) / c.decay_half_life))
            return lr
        if c.scheduler == "newbob":
            return max(c.min_lr, c.lr * self.scale)
        return c.lr

    def epoch_end(self, dev_loss: float) -> None:
        c = self.cfg
        if c.scheduler != "newbob":
            return
        if self.prev_dev_loss is not None:
            impr = (self.prev_dev_loss - dev_loss) / max(abs(self.prev_dev_loss), 1e-12)
            if self.halving and impr < c.newbob_stop:
                self.stop = True
            if impr < c.newbob_start:
                self.halving = True
            if self.halving:
                self.scale *= c.newbob_factor
        self.prev_dev_loss = dev_loss if self.prev_dev_loss is None else min(self.prev_dev_loss, dev_loss)

    def state_dict(self) -> Dict:
        return {"scale": self.scale, "halving": self.halving, "stop": self.stop, "prev_dev_loss": self.prev_dev_loss}

    def load_state_dict(self, st: Dict) -> None:
        self.scale, self.halving, self.stop, self.prev_dev_loss = (st["scale"], st["halving"], st["stop"],
                                                                  st["prev_dev_loss"])
