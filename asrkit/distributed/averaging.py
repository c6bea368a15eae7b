"""``ma``: periodic model averaging through torch's ``PeriodicModelAverager`` (BMUF with eta=0, zeta=1).

Schedule: the same as :class:`asrkit.distributed.bmuf.BMUF`: after a warm-up of M steps with averaged
gradients, parameters are averaged after optimiser steps M + tau, M + 2 tau, ... (1-based).
``PeriodicModelAverager`` averages on its calls number k (0-based) with k >= warmup and
(k - warmup) % period == 0, so it is built with ``warmup_steps = M + tau - 1``; during its own warm-up it
does nothing (PyTorch expects DDP to average gradients then), and this class averages gradients for the
first M steps itself. Call :meth:`after_optimizer_step` after ``optimizer.step()`` and before
``zero_grad()``.

What to evaluate and save is the average: :meth:`averaged_weights` loads the workers' mean at the last
sync (during the warm-up the workers are identical, so their current weights), as BMUF's W_g with eta=0
is; a rank's own weights between syncs are never what is evaluated.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager
from torch.nn.utils import parameters_to_vector

from asrkit.distributed.accounting import CommAccounting, ring_allreduce_wire
from asrkit.distributed.bmuf import average_tensors_, counted_gradient_average_, broadcast_module_, vector_to_parameters


class ModelAveraging:
    def __init__(self, model: torch.nn.Module, sync_period: int = 50, warmup_steps: int = 0,
                 optimizer: Optional[torch.optim.Optimizer] = None, reset_optimizer: bool = False,
                 average_buffers: bool = True, process_group=None,
                 accounting: Optional[CommAccounting] = None, broadcast: bool = True):
        if not isinstance(sync_period, int) or sync_period <= 0:
            raise ValueError(f"model-averaging period (tau) must be a positive integer, got {sync_period}")
        if warmup_steps < 0:
            raise ValueError(f"warm-up steps must be >= 0, got {warmup_steps}")
        self.model, self.optimizer, self.group = model, optimizer, process_group
        self.sync_period, self.warmup_steps = sync_period, warmup_steps
        self.reset_optimizer, self.average_buffers = reset_optimizer, average_buffers
        self.world_size = dist.get_world_size(process_group) if dist.is_initialized() else 1
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.param_bytes = sum(p.numel() * p.element_size() for p in self.params)
        if broadcast:
            broadcast_module_(model, 0, process_group)
        self.averager = (PeriodicModelAverager(sync_period, warmup_steps + sync_period - 1, process_group)
                         if dist.is_initialized() else None)
        self.num_steps = 0
        self.num_syncs = 0
        self.accounting = accounting or CommAccounting("ma", self.world_size)
        self.w_avg = self._vector()  # the average at the last sync (the broadcast weights before any)
        self.buffers_avg = self._buffers()

    def _vector(self) -> torch.Tensor:
        with torch.no_grad():
            return parameters_to_vector(self.params).detach().clone()

    def _buffers(self) -> dict:
        return {k: v.detach().clone() for k, v in self.model.named_buffers()}

    def before_optimizer_step(self, step: Optional[int] = None) -> None:
        if self.num_steps < self.warmup_steps:
            counted_gradient_average_(self.params, self.group, self.world_size, self.accounting)

    def after_optimizer_step(self, step: Optional[int] = None) -> bool:
        self.num_steps += 1
        self.accounting.add(dense=self.param_bytes, collectives=0)
        synced = False
        if self.averager is not None:
            a = self.averager
            synced = a.step >= a.warmup_steps and (a.step - a.warmup_steps) % a.period == 0
            t0 = time.perf_counter()
            a.average_parameters(self.params)
            if synced:
                nbytes = self.param_bytes
                if self.average_buffers:
                    nbytes += average_tensors_(list(self.model.buffers()), self.group)
                self.accounting.add(payload=nbytes, wire=ring_allreduce_wire(nbytes, self.world_size),
                                    seconds=time.perf_counter() - t0)
        else:  # one worker: averaging is the identity, keep the schedule for the counters
            synced = self.num_steps > self.warmup_steps and (self.num_steps - self.warmup_steps) % self.sync_period == 0
        if synced or self.num_steps <= self.warmup_steps:  # all workers hold the same weights now
            self.w_avg = self._vector()
            self.buffers_avg = self._buffers()
        if synced:
            self.num_syncs += 1
            if self.reset_optimizer and self.optimizer is not None:
                self.optimizer.state.clear()
        self.accounting.end_step()
        return synced

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[torch.nn.Module]:
        """Temporarily loads the average of the last sync into the model, e.g. to validate or save it
        (one worker: its current weights, which are the average)."""
        if self.world_size == 1:
            yield self.model
            return
        saved, saved_buffers = self._vector(), self._buffers()
        vector_to_parameters(self.w_avg, self.params)
        self._set_buffers(self.buffers_avg)
        try:
            yield self.model
        finally:
            vector_to_parameters(saved, self.params)
            self._set_buffers(saved_buffers)

    def _set_buffers(self, values: dict) -> None:
        with torch.no_grad():
            for k, b in self.model.named_buffers():
                b.copy_(values[k])

    def state_dict(self) -> dict:
        return {"num_steps": self.num_steps, "num_syncs": self.num_syncs, "w_avg": self.w_avg.cpu(),
                "buffers_avg": {k: v.cpu() for k, v in self.buffers_avg.items()},
                "averager_step": self.averager.step if self.averager is not None else self.num_steps}

    def load_state_dict(self, sd: dict) -> None:
        self.num_steps, self.num_syncs = sd["num_steps"], sd["num_syncs"]
        if "w_avg" in sd:
            self.w_avg = sd["w_avg"].to(self.w_avg.device)
            self.buffers_avg = {k: v.to(self.w_avg.device) for k, v in sd["buffers_avg"].items()}
        if self.averager is not None:
            self.averager.step = sd["averager_step"]
