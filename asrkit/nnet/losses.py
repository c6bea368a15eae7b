"""Frame losses, dispatched on the batch kind.

* ``hard`` batches carry ``targets`` (B, T) int64, ``IGNORE_INDEX`` (-100) on frames that are not
  scored (padding, context frames): cross-entropy.
* ``soft`` batches carry ``topk_ids`` (B, T, k) int64 and ``topk_probs`` (B, T, k) float: the teacher's
  top-k posteriors, renormalised to sum to one, ``L = - sum_k q_k log p_k`` with p the student's
  full softmax; ``mask`` (B, T) bool says which frames count. The one implementation is
  :func:`asrkit.pseudo.loss.topk_distillation_loss` (called with ``reduction="sum"``).

Every loss returns the *sum* over scored frames with the frame count and the number of frames whose
argmax is right (hard: the target; soft: the teacher's top-1), so that batches and logging aggregate
exactly. Scored frames only ever enter through ``mask`` / ``IGNORE_INDEX``: padded frames contribute
neither loss nor gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


@dataclass
class LossStats:
    loss_sum: torch.Tensor  # scalar, differentiable
    frames: torch.Tensor  # scalar int
    correct: torch.Tensor  # scalar int

    @property
    def loss(self) -> torch.Tensor:
        """Mean over scored frames (what the optimiser sees)."""
        return self.loss_sum / self.frames.clamp(min=1)


def hard_ce_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> LossStats:
    """``label_smoothing`` eps: the target is (1 - eps) on the senone plus eps / S on every senone."""
    S = logits.shape[-1]
    flat = logits.reshape(-1, S).float()
    tgt = targets.reshape(-1)
    loss_sum = F.cross_entropy(flat, tgt, ignore_index=IGNORE_INDEX, reduction="sum",
                               label_smoothing=float(label_smoothing))
    valid = tgt != IGNORE_INDEX
    with torch.no_grad():
        correct = ((flat.argmax(-1) == tgt) & valid).sum()
    return LossStats(loss_sum, valid.sum(), correct)


def soft_topk_loss(logits: torch.Tensor, topk_ids: torch.Tensor, topk_probs: torch.Tensor,
                   mask: torch.Tensor, temperature: float = 1.0) -> LossStats:
    """Cross-entropy to the renormalised teacher top-k, summed over ``mask`` frames: the reference
    :func:`asrkit.pseudo.loss.topk_distillation_loss` (``reduction="sum"``; ``temperature`` is the
    **student**'s, a teacher temperature is applied when the labels are made). ``correct``: frames
    whose argmax is the teacher's top-1 (``topk_ids[..., 0]``, the shards store ids best first)."""
    from asrkit.pseudo.loss import topk_distillation_loss

    mask = mask.to(torch.bool)
    loss_sum = topk_distillation_loss(logits, topk_ids, topk_probs, mask, temperature=temperature,
                                      reduction="sum")
    with torch.no_grad():
        correct = ((logits.argmax(-1) == topk_ids[..., 0].long()) & mask).sum()
    return LossStats(loss_sum, mask.sum(), correct)


def compute_loss(logits: torch.Tensor, batch: Dict, temperature: float = 1.0,
                 label_smoothing: float = 0.0) -> LossStats:
    """``label_smoothing`` applies to hard batches only (soft targets are already distributions)."""
    kind = batch.get("kind", "hard")
    if kind == "hard":
        return hard_ce_loss(logits, batch["targets"], label_smoothing)
    if kind == "soft":
        return soft_topk_loss(logits, batch["topk_ids"], batch["topk_probs"], batch["mask"], temperature)
    raise ValueError(f"unknown batch kind {kind!r} (expected 'hard' or 'soft')")
