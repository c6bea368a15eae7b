"""``ma``: periodic model averaging through torch's ``PeriodicModelAverager`` (BMUF with eta=0, zeta=1).

Schedule: the same as :class:`asrkit.dist.bmuf.BMUF`: after a warm-up of M steps with averaged
gradients, parameters are averaged after optimiser steps M + tau, M + 2 tau, ... (1-based).
``PeriodicModelAverager`` averages on its calls number k (0-based) with k >= warmup and
(k - warmup) % period == 0, so it is built with ``warmup_steps = M + tau - 1``; during its own warm-up it
does nothing (PyTorch expects DDP to average gradients then), and this class averages gradients for the
first M steps itself. Call :meth:`after_optimizer_step` after ``optimizer.step()`` and before
``zero_grad()``.
"""
from __future__ import annotations

import time
from typing import Optional

import torch
import torch.distributed as dist
from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

from asrkit.dist.accounting import CommAccounting, ring_allreduce_wire
from asrkit.dist.bmuf import average_gradients_, average_tensors_, broadcast_module_


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

    def before_optimizer_step(self, step: Optional[int] = None) -> None:
        if self.num_steps < self.warmup_steps and self.world_size > 1:
            t0 = time.perf_counter()
            nbytes = average_gradients_(self.params, self.group)
            self.accounting.add(payload=nbytes, wire=ring_allreduce_wire(nbytes, self.world_size),
                                seconds=time.perf_counter() - t0)

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
        if synced:
            self.num_syncs += 1
            if self.reset_optimizer and self.optimizer is not None:
                self.optimizer.state.clear()
        self.accounting.end_step()
        return synced

    def state_dict(self) -> dict:
        return {"num_steps": self.num_steps, "num_syncs": self.num_syncs,
                "averager_step": self.averager.step if self.averager is not None else self.num_steps}

    def load_state_dict(self, sd: dict) -> None:
        self.num_steps, self.num_syncs = sd["num_steps"], sd["num_syncs"]
        if self.averager is not None:
            self.averager.step = sd["averager_step"]
