"""BMUF: blockwise model-update filtering (Chen and Huo, ICASSP 2016).

N workers each run ``sync_period`` (tau) local optimiser steps from the same W_init(t); then::

    W_avg(t)    = mean_i W_i(t)                  # one all-reduce of the parameters (and float buffers)
    G(t)        = W_avg(t) - W_init(t)
    D(t)        = eta * D(t-1) + zeta * G(t)     # block momentum eta, block learning rate zeta
    W_g(t)      = W_g(t-1) + D(t)
    W_init(t+1) = W_g(t) + eta * D(t)            # Nesterov (default); classic: W_g(t)

Defaults: zeta = 1, eta = 1 - 1/N, tau = 50, optimiser state cleared after every sync. With eta = 0 and
zeta = 1 this is model averaging. The model trains from W_init; the filtered global model W_g is what to
evaluate and save: use :meth:`BMUF.global_weights` (a context manager) or :meth:`BMUF.global_state_dict`.

Optional warm-up: for the first ``warmup_steps`` optimiser steps gradients are averaged across workers
(DDP-style) in :meth:`before_optimizer_step`; the first block starts after it.

Use from any training loop::

    bmuf = BMUF(model, BMUFConfig(sync_period=50), optimizer)
    for batch in batches:
        loss(model, batch).backward()
        bmuf.before_optimizer_step()   # gradient averaging during warm-up, nothing afterwards
        optimizer.step()
        bmuf.after_optimizer_step()    # every tau steps: the block sync
        optimizer.zero_grad()

Without torch.distributed (or with one worker) the sync is local: W_avg = W and, with eta = 0, BMUF is
plain local training.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Iterator, List, Optional

import torch
import torch.distributed as dist
from torch.nn.utils import parameters_to_vector

from asrkit.distributed.accounting import CommAccounting, ring_allreduce_wire

log = logging.getLogger(__name__)


@dataclass
class BMUFConfig:
    sync_period: int = 50
    block_lr: float = 1.0                     # zeta
    block_momentum: Optional[float] = None    # eta; None: 1 - 1/N
    nesterov: bool = True
    reset_optimizer: bool = True
    warmup_steps: int = 0
    average_buffers: bool = True

    def __post_init__(self):
        if not isinstance(self.sync_period, int) or self.sync_period <= 0:
            raise ValueError(f"BMUF sync period (tau) must be a positive integer, got {self.sync_period}")
        if self.warmup_steps < 0:
            raise ValueError(f"warm-up steps must be >= 0, got {self.warmup_steps}")
        if not self.block_lr > 0:
            raise ValueError(f"block learning rate must be > 0, got {self.block_lr}")
        if self.block_momentum is not None and not 0 <= self.block_momentum < 1:
            raise ValueError(f"block momentum must be in [0, 1), got {self.block_momentum}")


def _world(group) -> int:
    return dist.get_world_size(group) if dist.is_initialized() else 1


def average_tensors_(tensors: List[torch.Tensor], group=None) -> int:
    """Averages floating tensors in place across workers with one all-reduce; returns the bytes sent."""
    tensors = [t for t in tensors if t.is_floating_point()]
    if not tensors or not dist.is_initialized():
        return 0
    flat = torch.cat([t.detach().reshape(-1).float() for t in tensors])
    dist.all_reduce(flat, group=group)
    flat.div_(dist.get_world_size(group))
    off = 0
    for t in tensors:
        t.data.copy_(flat[off: off + t.numel()].view_as(t))
        off += t.numel()
    return flat.numel() * flat.element_size()


def average_gradients_(params: List[torch.nn.Parameter], group=None) -> int:
    """Averages .grad across workers with one all-reduce (DDP-style); returns the bytes all-reduced."""
    grads = [p.grad for p in params if p.grad is not None]
    return average_tensors_(grads, group)


def counted_gradient_average_(params: List[torch.nn.Parameter], group, world_size: int,
                              accounting: CommAccounting) -> None:
    """A warm-up step of BMUF or model averaging: the gradients averaged as ddp does, counted as a dense
    all-reduce (payload, ring wire bytes, seconds)."""
    if world_size <= 1:
        return
    t0 = time.perf_counter()
    nbytes = average_gradients_(params, group)
    accounting.add(payload=nbytes, wire=ring_allreduce_wire(nbytes, world_size), seconds=time.perf_counter() - t0)


def vector_to_parameters(vec: torch.Tensor, params: List[torch.nn.Parameter]) -> None:
    """Copies ``vec`` into the parameters (torch's version makes them views of ``vec``)."""
    off = 0
    with torch.no_grad():
        for p in params:
            p.copy_(vec[off: off + p.numel()].view_as(p))
            off += p.numel()


def broadcast_module_(module: torch.nn.Module, src: int = 0, group=None) -> None:
    """Copies rank ``src``'s parameters and buffers to every worker."""
    if not dist.is_initialized():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=src, group=group)


class BMUF:
    def __init__(self, model: torch.nn.Module, cfg: BMUFConfig, optimizer: Optional[torch.optim.Optimizer] = None,
                 process_group=None, accounting: Optional[CommAccounting] = None, broadcast: bool = True,
                 world_size: Optional[int] = None):
        self.model, self.cfg, self.optimizer, self.group = model, cfg, optimizer, process_group
        # world_size: the simulator's number of virtual workers (asrkit.distributed.simulate); else the group's
        self.world_size = world_size if world_size is not None else _world(process_group)
        self.eta = cfg.block_momentum if cfg.block_momentum is not None else 1.0 - 1.0 / self.world_size
        self.zeta = cfg.block_lr
        self.params: List[torch.nn.Parameter] = [p for p in model.parameters() if p.requires_grad]
        if broadcast:
            broadcast_module_(model, 0, process_group)
        self.param_bytes = sum(p.numel() * p.element_size() for p in self.params)
        self.buffer_bytes = sum(b.numel() * 4 for b in model.buffers() if b.is_floating_point())
        with torch.no_grad():
            w = parameters_to_vector(self.params).detach().float()
        self.w_init = w.clone()
        self.w_global = w.clone()
        self.delta = torch.zeros_like(w)
        self.num_steps = 0       # optimiser steps taken
        self.num_syncs = 0
        self.accounting = accounting or CommAccounting("bmuf", self.world_size)
        if cfg.reset_optimizer and optimizer is None:
            log.warning("BMUF: reset_optimizer is set but no optimiser was given: nothing will be reset")

    # ----------------------------------------------------------------- training-loop hooks
    def in_warmup(self) -> bool:
        return self.num_steps < self.cfg.warmup_steps

    def before_optimizer_step(self, step: Optional[int] = None) -> None:
        """During warm-up: average gradients across workers (one all-reduce)."""
        if self.in_warmup():
            counted_gradient_average_(self.params, self.group, self.world_size, self.accounting)

    def after_optimizer_step(self, step: Optional[int] = None) -> bool:
        """Counts a step; syncs at the end of each block. Returns True when a sync happened."""
        self.num_steps += 1
        self.accounting.add(dense=self.param_bytes, collectives=0)
        synced = False
        if self.num_steps <= self.cfg.warmup_steps:
            with torch.no_grad():   # workers are identical during warm-up: the block starts here
                w = parameters_to_vector(self.params).float()
                self.w_init.copy_(w)
                self.w_global.copy_(w)
        elif (self.num_steps - self.cfg.warmup_steps) % self.cfg.sync_period == 0:
            self.sync()
            synced = True
        self.accounting.end_step()
        return synced

    # the three places where workers meet; asrkit.distributed.simulate overrides them for virtual workers
    def _averaged_params(self) -> torch.Tensor:
        """W_avg: the mean over workers of their parameter vectors (one all-reduce)."""
        w_avg = parameters_to_vector(self.params).detach().float().clone()
        if self.world_size > 1:
            dist.all_reduce(w_avg, group=self.group)
            w_avg.div_(self.world_size)
        return w_avg

    def _load_params(self, vec: torch.Tensor) -> None:
        """Every worker continues from ``vec``."""
        vector_to_parameters(vec, self.params)

    def _average_buffers(self) -> int:
        if self.cfg.average_buffers and self.world_size > 1:
            return average_tensors_(list(self.model.buffers()), self.group)
        return 0

    @torch.no_grad()
    def block_update(self, w_avg: torch.Tensor) -> torch.Tensor:
        """The filter on the workers' average (consumed): updates D, W_g, W_init; returns W_init."""
        g = w_avg.sub_(self.w_init)                       # G(t) = W_avg - W_init
        self.delta.mul_(self.eta).add_(g, alpha=self.zeta)  # D(t) = eta D(t-1) + zeta G(t)
        self.w_global.add_(self.delta)                    # W_g(t) = W_g(t-1) + D(t)
        if self.cfg.nesterov:
            self.w_init.copy_(self.w_global).add_(self.delta, alpha=self.eta)
        else:
            self.w_init.copy_(self.w_global)
        return self.w_init

    @torch.no_grad()
    def sync(self) -> None:
        t0 = time.perf_counter()
        w_avg = self._averaged_params()
        nbytes = w_avg.numel() * w_avg.element_size()
        self._load_params(self.block_update(w_avg))
        nbytes += self._average_buffers()
        if self.cfg.reset_optimizer and self.optimizer is not None:
            self.optimizer.state.clear()
        self.num_syncs += 1
        self.accounting.add(payload=nbytes, wire=ring_allreduce_wire(nbytes, self.world_size),
                            seconds=time.perf_counter() - t0, collectives=2 if self.cfg.average_buffers else 1)

    # ----------------------------------------------------------------- evaluation and checkpoints
    @contextlib.contextmanager
    def global_weights(self) -> Iterator[torch.nn.Module]:
        """Temporarily loads W_g (the filtered model) into the model, e.g. to validate or save it."""
        with torch.no_grad():
            saved = parameters_to_vector(self.params).detach().clone()
            vector_to_parameters(self.w_global, self.params)
        try:
            yield self.model
        finally:
            with torch.no_grad():
                vector_to_parameters(saved, self.params)

    def global_state_dict(self) -> dict:
        with self.global_weights() as m:
            return {k: v.detach().clone() for k, v in m.state_dict().items()}

    def state_dict(self) -> dict:
        return {"w_init": self.w_init.cpu(), "w_global": self.w_global.cpu(), "delta": self.delta.cpu(),
                "num_steps": self.num_steps, "num_syncs": self.num_syncs, "eta": self.eta, "zeta": self.zeta}

    def load_state_dict(self, sd: dict) -> None:
        dev = self.w_init.device
        self.w_init, self.w_global, self.delta = (sd["w_init"].to(dev), sd["w_global"].to(dev),
                                                  sd["delta"].to(dev))
        self.num_steps, self.num_syncs = sd["num_steps"], sd["num_syncs"]
