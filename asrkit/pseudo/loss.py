"""The top-k distillation loss on machine-labelled frames.

With ``q`` the teacher's top-k posteriors renormalised to sum to one and ``p = softmax(z / tau)`` the
student's full softmax at temperature ``tau`` (applied to the **student** logits ``z``):

    L_frame = - sum_{j in topK} q_j log p_j = logsumexp(z / tau) - sum_j q_j z_j / tau

(the second form holds because sum_j q_j = 1; it needs one logsumexp over the senones and a gather of
k logits, never a full log-softmax tensor). The loss is the mean over valid frames (``mask``).

Temperatures. The student temperature ``tau`` is applied here. A **teacher** temperature belongs to
the labelling step: the shards store probabilities, not logits, so a teacher temperature is applied
when they are made (``label_cuts(..., temperature=...)``, ``pseudo_label --temperature``). With
``scale_t2=True`` the loss is multiplied by ``tau**2`` (Hinton et al.), which keeps the gradient's
scale independent of ``tau``.

When ``k`` equals the number of senones (and the teacher's probabilities sum to one) this is exactly
the cross-entropy to the full teacher distribution, :func:`dense_distillation_loss`.

This is the only implementation of the distillation loss: the trainer's dispatch
(``asrkit.nnet.losses.compute_loss`` on ``kind="soft"`` batches) calls it with ``reduction="sum"``
(the sum over valid frames, reduced to the per-frame mean by the loop exactly like hard CE).
"""
from __future__ import annotations

from typing import Optional

import torch


def renormalise(topk_probs: torch.Tensor, eps: float = 1e-30) -> torch.Tensor:
    q = topk_probs.float()
    return q / q.sum(-1, keepdim=True).clamp(min=eps)


def _masked_mean(per_frame: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    if mask is None:
        return per_frame.mean()
    mask = mask.to(torch.bool)
    per_frame = torch.where(mask, per_frame, torch.zeros((), dtype=per_frame.dtype, device=per_frame.device))
    return per_frame.sum() / mask.sum().clamp(min=1).to(per_frame.dtype)


def topk_distillation_loss(logits: torch.Tensor, topk_ids: torch.Tensor, topk_probs: torch.Tensor,
                           mask: Optional[torch.Tensor] = None, temperature: float = 1.0,
                           scale_t2: bool = False, renormalise_targets: bool = True,
                           reduction: str = "mean") -> torch.Tensor:
    """Masked mean over frames of ``-sum_k q_k log softmax(logits / temperature)_{ids_k}``.

    ``logits`` (..., S) float; ``topk_ids`` (..., k) integer (uint16 is converted); ``topk_probs``
    (..., k) float (float16 is fine); ``mask`` (...) bool valid frames (None: all). Returns a scalar:
    the masked mean (``reduction="mean"``) or the masked sum over valid frames (``"sum"``).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    z = logits.float()
    if temperature != 1.0:
        z = z / temperature
    ids = topk_ids.to(torch.int64)
    q = renormalise(topk_probs) if renormalise_targets else topk_probs.float()
    lse = torch.logsumexp(z, dim=-1)
    picked = z.gather(-1, ids)
    per_frame = lse * q.sum(-1) - (q * picked).sum(-1)
    if reduction == "sum":
        loss = (per_frame.sum() if mask is None else
                torch.where(mask.to(torch.bool), per_frame, torch.zeros((), dtype=per_frame.dtype,
                                                                        device=per_frame.device)).sum())
    else:
        loss = _masked_mean(per_frame, mask)
    if scale_t2 and temperature != 1.0:
        loss = loss * (temperature ** 2)
    return loss


def dense_distillation_loss(logits: torch.Tensor, teacher_probs: torch.Tensor,
                            mask: Optional[torch.Tensor] = None, temperature: float = 1.0) -> torch.Tensor:
    """Reference: masked mean of the cross-entropy to a full (dense) teacher distribution."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    per_frame = -(teacher_probs.float() * logp).sum(-1)
    return _masked_mean(per_frame, mask)


def hard_ce_loss(logits: torch.Tensor, targets: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Masked mean cross-entropy to hard senone targets (labelled batches), same reduction as above."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    tgt = targets.to(torch.int64)
    if mask is not None:
        tgt = torch.where(mask.to(torch.bool), tgt, torch.zeros_like(tgt))
    per_frame = -logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    return _masked_mean(per_frame, mask)
