"""Adam for sparse averaged gradients: the second moment corrected for how often an element is sent.

Why: under GTC most elements of the averaged gradient are zero at most steps and, when sent, carry what
accumulated in the residual over the steps they were not. An element sent every k steps with
``G = k g`` (g: its mean gradient) gives Adam a second moment ``v = G^2 / k = k g^2`` instead of dense
training's ``g^2``, so Adam's step ``m / sqrt(v)`` moves it ``sqrt(k)`` times less than dense Adam over
the same steps: at a sent fraction of 0.005 (k around 200) about 14x less. That is the GTC slowdown
measured on the synthetic recipe (docs/scaling_workers.md), where sending more (f = 0.1) helped only
partly, as ``sqrt(k)`` predicts.

The correction: keep, beside Adam's ``m`` and ``v``, an exponential average ``q`` (with Adam's beta2 and
bias correction) of the indicator ``g_i != 0``, an estimate of ``1 / k``; the denominator uses
``v_hat * q_hat``, which is ``G^2 / k * 1 / k = g^2`` for the stream above and exactly ``v_hat`` when
every element is non-zero at every step (dense gradients: plain Adam). ``m`` is Adam's: its sum over the
steps is the sum of what was sent, which error feedback keeps equal to the sum of the gradients.

Weight decay is Adam's L2 (added to the gradient of the elements that carry one: a decayed element with
no gradient this step is not counted as sent).
"""

from typing import Iterable, Tuple

import torch


class SparseGradAdam(torch.optim.Optimizer):
    """Adam whose second moment is scaled by the running share of steps in which each element is non-zero."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        if not lr > 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or not eps > 0 or weight_decay < 0:
            raise ValueError(f"SparseGradAdam: bad lr {lr}, betas {betas}, eps {eps} or weight_decay "
                             f"{weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                st = self.state[p]
                if st and "sent_share" not in st:
                    raise ValueError("SparseGradAdam was given another optimiser's state (a checkpoint of plain "
                                     "Adam?): resume with the optimiser that wrote it")
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                    st["sent_share"] = torch.zeros_like(p)
                sent = (g != 0).to(p.dtype)
                if group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                st["step"] += 1
                t = st["step"]
                m, v, q = st["exp_avg"], st["exp_avg_sq"], st["sent_share"]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                q.mul_(b2).add_(sent, alpha=1 - b2)
                bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
                # v_hat * q_hat: the mean square of the dense gradient, estimated from the sparse one
                denom = (v * q).div_(bc2 * bc2).sqrt_().add_(group["eps"])
                p.addcdiv_(m, denom, value=-group["lr"] / bc1)
        return loss
