"""Simulated data parallelism: N virtual workers in one process, through the same code as the real modes.

Accuracy against the number of workers can be measured where no cluster exists. At each update every
virtual worker w computes the gradient of its own batch (the trainer gives it the batch that rank w of a
real N-process run would train on: :func:`asrkit.nnet.sampler.shard_positions`), then:

* ``ddp``: the gradients are averaged (the all-reduce), one optimiser step on the one model;
* ``gtc``: each worker keeps its own :class:`asrkit.distributed.gtc.GTCState` (residuals, velocities, threshold
  generator seeded with its rank) and builds its message with :func:`asrkit.distributed.gtc.gtc_compress`; the
  messages are combined by :func:`asrkit.distributed.gtc.gtc_combine`, exactly what the DDP hook does around its
  all-gathers. Buckets follow DDP's rule (parameters in reverse order, the first bucket capped at 1 MB and
  the others at ``bucket_cap_mb``); a real run's buckets follow the order gradients become ready, which
  may group them differently (the same for a single bucket);
* ``bmuf`` / ``ma``: each worker keeps its own parameter vector and optimiser state (swapped into the one
  module and optimiser for its turn) and the block sync runs :class:`asrkit.distributed.bmuf.BMUF`'s own
  ``block_update`` on the workers' mean; ``ma`` is BMUF with block momentum 0 and block learning rate 1
  (what :mod:`asrkit.distributed.averaging` computes with torch's averager). Float buffers are not simulated per
  worker (the students have none).

A step whose gradient is not finite on some worker is skipped by all (as in the real modes). The
communication counters are those each worker would have: :attr:`accounting` is worker 0's, and
:meth:`payload_per_worker` the mean over workers. Dropout masks come from the one process RNG stream, so
a simulated run equals a real one only without dropout (tests/distributed/test_simulate.py checks N=2 against 2
gloo processes).
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch.nn.utils import parameters_to_vector

from asrkit.distributed.accounting import CommAccounting, ring_allgather_wire, ring_allreduce_wire
from asrkit.distributed.bmuf import BMUF, BMUFConfig, vector_to_parameters
from asrkit.distributed.gtc import CODE_BYTES, HEADER_BYTES, NONFINITE, GTCState, gtc_combine, gtc_compress
from asrkit.distributed.sync import SyncConfig, Synchronizer

log = logging.getLogger(__name__)

FIRST_BUCKET_BYTES = 1024 * 1024  # torch.distributed's _DEFAULT_FIRST_BUCKET_BYTES


def bucket_assignment(params: Sequence[torch.nn.Parameter], cap_mb: float) -> List[List[int]]:
    """Indices of ``params`` per bucket, DDP's rule: reverse order, the first bucket up to 1 MB."""
    buckets: List[List[int]] = [[]]
    size, limit = 0, min(FIRST_BUCKET_BYTES, int(cap_mb * 1024 * 1024))
    for i in reversed(range(len(params))):
        nbytes = params[i].numel() * params[i].element_size()
        if buckets[-1] and size + nbytes > limit:
            buckets.append([])
            size, limit = 0, int(cap_mb * 1024 * 1024)
        buckets[-1].append(i)
        size += nbytes
    return buckets


class _SimulatedBMUF(BMUF):
    """BMUF whose workers are the simulator's parameter vectors (the filter itself is BMUF's)."""

    def __init__(self, sim: "SimulatedWorkers", *args, **kw):
        self.sim = sim
        super().__init__(*args, **kw)

    def _averaged_params(self) -> torch.Tensor:
        return torch.stack(self.sim.worker_params).mean(0)

    def _load_params(self, vec: torch.Tensor) -> None:
        for w in self.sim.worker_params:
            w.copy_(vec)
        vector_to_parameters(vec, self.params)

    def _average_buffers(self) -> int:
        return 0

    def sync(self) -> None:
        super().sync()
        if self.cfg.reset_optimizer:
            for st in self.sim.worker_states:
                st.clear()


class SimulatedWorkers:
    """N virtual workers of ``cfg.mode`` on ``model``/``optimizer``; the interface of
    :class:`asrkit.distributed.sync.Synchronizer` (accounting, eval_weights, state_dict, skips) plus :meth:`step`."""

    def __init__(self, cfg: SyncConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, num_workers: int):
        if num_workers < 1:
            raise ValueError(f"simulated workers must be >= 1, got {num_workers}")
        if optimizer is None:
            raise ValueError("simulated workers need the optimiser")
        self.cfg, self.module, self.model, self.opt, self.n = cfg, model, model, optimizer, num_workers
        self.world_size = num_workers
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.accountings = [CommAccounting(cfg.mode, num_workers) for _ in range(num_workers)]
        self.accounting = self.accountings[0]
        self._skips = Synchronizer.__new__(Synchronizer)  # only its skip counters and note_skip
        self._skips.cfg = cfg
        self._skips.load_skip_state({})
        self.impl: Optional[BMUF] = None
        self.states: List[GTCState] = []
        self.param_bytes = sum(p.numel() * p.element_size() for p in self.params)
        if cfg.mode in ("ddp", "gtc"):
            self.buckets = bucket_assignment(self.params, cfg.bucket_cap_mb)
            if cfg.mode == "gtc":
                total = sum(p.numel() for p in self.params)
                self.states = [GTCState(cfg.gtc_config(), accounting=self.accountings[w], rank=w,
                                        world_size=num_workers, total_numel=total) for w in range(num_workers)]
        else:
            bcfg = cfg.bmuf_config()
            if cfg.mode == "ma":  # model averaging: BMUF with eta = 0, zeta = 1, the optimiser kept by default
                bcfg = BMUFConfig(cfg.sync_period, 1.0, 0.0, True,
                                  False if cfg.reset_optimizer is None else cfg.reset_optimizer,
                                  cfg.warmup_steps, cfg.average_buffers)
            with torch.no_grad():
                w0 = parameters_to_vector(self.params).detach().float()
            self.worker_params = [w0.clone() for _ in range(num_workers)]
            self.worker_states = [defaultdict(dict) for _ in range(num_workers)]
            self.impl = _SimulatedBMUF(self, model, bcfg, optimizer, None, self.accounting, broadcast=False,
                                       world_size=num_workers)

    # ------------------------------------------------------------------ skips (as Synchronizer)
    @property
    def skipped_steps(self) -> int:
        return self._skips.skipped_steps

    @property
    def skipped_at(self) -> list:
        return self._skips.skipped_at

    def note_skip(self, step: int, skipped: bool) -> None:
        self._skips.note_skip(step, skipped)

    def payload_per_worker(self) -> float:
        return sum(a.payload_bytes for a in self.accountings) / self.n

    # ------------------------------------------------------------------ one update
    def step(self, batches: Sequence[Any], loss_fn: Callable[[torch.nn.Module, Any], Tuple[torch.Tensor, Any]],
             grad_clip: float = 0.0) -> Tuple[bool, List[Any]]:
        """One update of all workers: worker w trains on ``batches[w]``; ``loss_fn(model, batch)`` returns
        ``(loss, anything)``. Returns (whether the step was taken, the ``anything`` of each worker). The
        caller sets the learning rate before."""
        if len(batches) != self.n:
            raise ValueError(f"{self.n} simulated workers got {len(batches)} batches")
        if self.impl is None:
            return self._step_shared(batches, loss_fn, grad_clip)
        return self._step_local(batches, loss_fn, grad_clip)

    def _grads(self, batch, loss_fn) -> Tuple[List[torch.Tensor], Any]:
        self.opt.zero_grad(set_to_none=True)
        loss, out = loss_fn(self.model, batch)
        loss.backward()
        return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in self.params], out

    def _apply(self, grads: List[torch.Tensor], grad_clip: float) -> None:
        for p, g in zip(self.params, grads):
            p.grad = g.to(p.dtype)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, grad_clip)
        self.opt.step()

    def _step_shared(self, batches, loss_fn, grad_clip) -> Tuple[bool, List[Any]]:
        """ddp / gtc: one model; the workers' gradients combined bucket by bucket."""
        grads, outs = [], []
        for b in batches:
            g, o = self._grads(b, loss_fn)
            grads.append(g)
            outs.append(o)
        ok = True
        combined = [torch.empty_like(g) for g in grads[0]]
        for bidx, bucket in enumerate(self.buckets):
            flat = [torch.cat([grads[w][i].reshape(-1).float() for i in bucket]) for w in range(self.n)]
            dense, finite = self._reduce_bucket(bidx, flat, bidx == len(self.buckets) - 1)
            ok = ok and finite
            off = 0
            for i in bucket:
                k = combined[i].numel()
                combined[i].copy_(dense[off: off + k].view_as(combined[i]))
                off += k
        if ok:
            self._apply(combined, grad_clip)
        self.opt.zero_grad(set_to_none=True)
        return ok, outs

    def _reduce_bucket(self, bidx: int, flat: List[torch.Tensor], last: bool) -> Tuple[torch.Tensor, bool]:
        numel = flat[0].numel()
        nbytes = numel * 4
        t0 = time.perf_counter()
        dense_mode = self.cfg.mode == "ddp" or self.states[0].iter < self.states[0].cfg.start_iter
        if dense_mode:
            for a in self.accountings:
                a.add(payload=nbytes, wire=ring_allreduce_wire(nbytes, self.n), dense=nbytes,
                      elements_sent=numel, elements_total=numel)
            dense = torch.stack(flat).mean(0)
            finite = bool(torch.isfinite(dense).all())
            for st in self.states:
                st.maybe_increase_iter(last)
        else:
            msgs = []
            sizes = ([self.params[i].numel() for i in self.buckets[bidx]] if self.states[0].cfg.per_tensor
                     else None)
            k = len(sizes) if sizes else 0
            for st, g in zip(self.states, flat):
                st.begin_bucket()
                msgs.append(gtc_compress(st, bidx, g, sizes))
            counts = [m[0] for m in msgs]
            finite = NONFINITE not in counts
            m = max(counts) if finite else 0
            for a, c in zip(self.accountings, counts):
                a.add(payload=CODE_BYTES * (max(c, 0) + (k if m else 0)) + HEADER_BYTES,
                      wire=ring_allgather_wire(HEADER_BYTES + CODE_BYTES * (m + k if m else 0), self.n),
                      dense=nbytes, elements_sent=max(c, 0), elements_total=numel, collectives=2 if m else 1)
            dense = gtc_combine(counts, [s for _, s, _ in msgs], [c for _, _, c in msgs], numel, flat[0].device,
                                sizes, self.states[0].cfg.coding)
            for st in self.states:
                if not finite:
                    st.step_finite = False
                if last:
                    st.finish_step()
                st.maybe_increase_iter(last)
        if self.cfg.mode == "ddp" and last:
            for a in self.accountings:
                a.end_step()
        self.accounting.add_seconds(time.perf_counter() - t0)
        return dense, finite

    def _step_local(self, batches, loss_fn, grad_clip) -> Tuple[bool, List[Any]]:
        """bmuf / ma: each worker its own model and optimiser state; the block sync through BMUF."""
        impl = self.impl
        grads, outs = [], []
        for w, b in enumerate(batches):
            vector_to_parameters(self.worker_params[w], self.params)
            g, o = self._grads(b, loss_fn)
            grads.append(g)
            outs.append(o)
        ok = all(bool(torch.isfinite(t).all()) for g in grads for t in g)
        if ok:
            if impl.in_warmup() and self.n > 1:  # gradient averaging during the warm-up
                avg = [torch.stack([g[i] for g in grads]).mean(0) for i in range(len(self.params))]
                grads = [avg] * self.n
                nbytes = sum(t.numel() * 4 for t in avg)
                for a in self.accountings:
                    a.add(payload=nbytes, wire=ring_allreduce_wire(nbytes, self.n))
            own_state = self.opt.state
            try:
                for w in range(self.n):
                    vector_to_parameters(self.worker_params[w], self.params)
                    self.opt.state = self.worker_states[w]
                    self._apply(grads[w], grad_clip)
                    with torch.no_grad():
                        self.worker_params[w].copy_(parameters_to_vector(self.params))
            finally:
                self.opt.state = own_state
            before = impl.accounting.payload_bytes, impl.accounting.wire_bytes
            impl.after_optimizer_step()  # counts the step, block sync at the block's end (BMUF's code)
            for a in self.accountings[1:]:  # the other workers sent the same as worker 0
                a.add(payload=impl.accounting.payload_bytes - before[0], wire=impl.accounting.wire_bytes - before[1],
                      dense=self.param_bytes, collectives=0)
                a.end_step()
        self.opt.zero_grad(set_to_none=True)
        return ok, outs

    # ------------------------------------------------------------------ evaluation and checkpoints
    @contextlib.contextmanager
    def eval_weights(self) -> Iterator[torch.nn.Module]:
        """ddp/gtc: the model; bmuf: W_g; ma: the average at the last sync (W_g with eta = 0)."""
        if self.impl is not None:
            with self.impl.global_weights() as m:
                yield m
        else:
            yield self.module

    def before_optimizer_step(self, step: Optional[int] = None) -> None:  # the trainer calls step() instead
        raise RuntimeError("simulated workers train through SimulatedWorkers.step")

    after_optimizer_step = before_optimizer_step

    def state_dict(self) -> dict:
        sd = {"mode": self.cfg.mode, "simulate_workers": self.n, "skips": self._skips.skip_state(),
              "accounting": [{k: getattr(a, k) for k in ("steps", "payload_bytes", "wire_bytes", "dense_bytes",
                                                          "collectives", "elements_sent", "elements_total")}
                             for a in self.accountings]}
        if self.states:
            sd["gtc"] = [st.state_dict() for st in self.states]
        if self.impl is not None:
            sd["impl"] = self.impl.state_dict()
            sd["worker_params"] = [w.cpu() for w in self.worker_params]
            sd["worker_states"] = [{i: dict(self.worker_states[w][p]) for i, p in enumerate(self.params)
                                    if p in self.worker_states[w]} for w in range(self.n)]
        return sd

    def load_state_dict(self, sd: dict) -> None:
        if sd.get("mode") != self.cfg.mode or sd.get("simulate_workers") != self.n:
            raise ValueError(f"checkpoint was written with --sync {sd.get('mode')} and "
                             f"{sd.get('simulate_workers')} simulated workers, not {self.cfg.mode} and {self.n}")
        self._skips.load_skip_state(sd.get("skips", {}))
        for a, saved in zip(self.accountings, sd.get("accounting", [])):
            for k, v in saved.items():
                setattr(a, k, v)
        for st, saved in zip(self.states, sd.get("gtc", [])):
            st.load_state_dict(saved)
        if self.impl is not None:
            self.impl.load_state_dict(sd["impl"])
            dev = self.params[0].device
            self.worker_params = [w.to(dev) for w in sd["worker_params"]]
            for w, saved in enumerate(sd["worker_states"]):
                st = self.worker_states[w]
                st.clear()
                for i, s in saved.items():
                    st[self.params[int(i)]] = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in s.items()}
            vector_to_parameters(self.worker_params[0], self.params)
