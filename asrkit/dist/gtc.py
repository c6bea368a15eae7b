"""GTC: gradient threshold compression (Strom 2015) as a DDP communication hook.

Each worker keeps a residual r per DDP bucket (keyed by ``bucket.index()``). At every step::

    r += g                                   # error feedback: what was not sent stays in r
    send (i, sign(r_i)) for every |r_i| >= tau, and r_i -= sign(r_i) * tau

Codes are int32 ``index * 2 + (1 if negative else 0)`` (so a bucket may hold up to 2**30 elements).
Messages have different lengths on different workers, so they are exchanged with two all-gathers: a
synchronous one of an 8-byte header (count, the sender's tau as float32 bits), then an asynchronous one of
the codes padded to the longest message. The hook's future decodes every worker's codes to ``+-tau_w`` at
their indices, sums them and divides by the number of workers: that dense tensor is the bucket's gradient.

Threshold: either fixed (``threshold``, must be > 0) or adaptive (``target_fraction``): tau is chosen per
bucket and step as the (1 - f) quantile of |r|, i.e. the k-th largest |r_i| with k = ceil(f n), computed
exactly when the bucket has at most ``sample_size`` elements and otherwise estimated on ``sample_size``
elements drawn uniformly with replacement (seeded per rank). Each worker sends its own tau in the header,
so workers may use different thresholds. A residual of all zeros sends nothing.

DDP rebuilds its buckets after the first iteration, so iterations before ``start_iter`` (default 1) use
plain averaging all-reduce and do not touch the residuals. If a bucket's size ever changes the residual
of that index is restarted (logged): the unsent mass is lost.
"""

import logging
import math
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
import torch.distributed as dist

from asrkit.dist.accounting import CommAccounting, ring_allgather_wire, ring_allreduce_wire

log = logging.getLogger(__name__)

HEADER_BYTES = 8
CODE_BYTES = 4
MAX_BUCKET_NUMEL = 1 << 30


@dataclass
class GTCConfig:
    threshold: Optional[float] = None         # fixed tau (> 0)
    target_fraction: Optional[float] = None   # adaptive: keep about this fraction of elements per bucket
    start_iter: int = 1                       # plain all-reduce before this iteration (bucket rebuild)
    sample_size: int = 65536                  # adaptive tau: exact below this bucket size, sampled above
    seed: int = 0
    track_mass: bool = False                  # keep float64 sums of input and sent gradients (tests)

    def __post_init__(self):
        if self.threshold is None and self.target_fraction is None:
            raise ValueError("GTC needs a threshold (--gtc-threshold) or a target fraction "
                             "(--gtc-target-fraction)")
        if self.threshold is not None and self.target_fraction is not None:
            raise ValueError("give either a fixed GTC threshold or a target fraction, not both")
        if self.threshold is not None and not self.threshold > 0:
            raise ValueError(f"GTC threshold must be > 0, got {self.threshold}")
        if self.target_fraction is not None and not 0 < self.target_fraction <= 1:
            raise ValueError(f"GTC target fraction must be in (0, 1], got {self.target_fraction}")
        if self.start_iter < 0:
            raise ValueError(f"start_iter must be >= 0, got {self.start_iter}")
        if self.sample_size < 1:
            raise ValueError(f"sample_size must be >= 1, got {self.sample_size}")


def _f32(x: float) -> float:
    return float(torch.tensor(x, dtype=torch.float32))


def gtc_encode(residual: torch.Tensor, tau: float) -> torch.Tensor:
    """Codes for every |r_i| >= tau (in index order); subtracts sign * tau from those r_i in place."""
    if not tau > 0:
        return torch.empty(0, dtype=torch.int32, device=residual.device)
    idx = (residual.abs() >= tau).nonzero().squeeze(1)
    vals = residual[idx]
    neg = vals < 0
    residual[idx] = vals - torch.where(neg, -tau, tau).to(vals.dtype)
    return (idx * 2 + neg.to(idx.dtype)).to(torch.int32)


def gtc_decode(codes: torch.Tensor, tau: float, out: torch.Tensor) -> torch.Tensor:
    """Adds +-tau at the coded indices to ``out`` (a flat tensor) and returns it."""
    if codes.numel():
        c = codes.long()
        vals = (1.0 - 2.0 * (c & 1).to(out.dtype)) * tau
        out.index_add_(0, c >> 1, vals)
    return out


def adaptive_threshold(residual: torch.Tensor, fraction: float, sample_size: int,
                       generator: Optional[torch.Generator] = None) -> float:
    """The k-th largest |r_i|, k = ceil(fraction * n): exact for n <= sample_size, else on a sample."""
    n = residual.numel()
    if n == 0:
        return 0.0
    if n <= sample_size:
        vals, k = residual.abs(), max(1, math.ceil(fraction * n))
    else:
        pick = torch.randint(n, (sample_size,), generator=generator, device=residual.device)
        vals, k = residual[pick].abs(), max(1, math.ceil(fraction * sample_size))
    return float(torch.topk(vals, min(k, vals.numel()), sorted=False).values.min())


class GTCState:
    """State of the GTC hook on one worker: residuals, iteration, accounting (and mass for tests)."""

    def __init__(self, cfg: GTCConfig, process_group=None, accounting: Optional[CommAccounting] = None):
        self.cfg = cfg
        self.process_group = process_group
        self.iter = 0
        self.residuals: Dict[int, torch.Tensor] = {}
        self.last_tau: Dict[int, float] = {}
        ws = dist.get_world_size(process_group) if dist.is_initialized() else 1
        self.accounting = accounting or CommAccounting("gtc", ws)
        self._generator: Optional[torch.Generator] = None
        # filled when cfg.track_mass: float64 sums of the local gradients and of what was sent
        self.mass_in: Dict[int, torch.Tensor] = {}
        self.mass_sent: Dict[int, torch.Tensor] = {}
        self.last_sent: Dict[int, torch.Tensor] = {}
        self.last_result: Dict[int, torch.Tensor] = {}

    def maybe_increase_iter(self, bucket) -> None:
        if bucket.is_last():
            self.iter += 1
            self.accounting.end_step()

    def threshold(self, residual: torch.Tensor) -> float:
        if self.cfg.threshold is not None:
            return _f32(self.cfg.threshold)
        if self._generator is None or self._generator.device != residual.device:
            self._generator = torch.Generator(device=residual.device)
            rank = dist.get_rank(self.process_group) if dist.is_initialized() else 0
            self._generator.manual_seed(self.cfg.seed * 1000003 + rank)
        return _f32(adaptive_threshold(residual, self.cfg.target_fraction, self.cfg.sample_size,
                                       self._generator))

    def state_dict(self) -> dict:
        return {"iter": self.iter, "residuals": {k: v.cpu() for k, v in self.residuals.items()}}

    def load_state_dict(self, sd: dict) -> None:
        self.iter = sd["iter"]
        self.residuals = {int(k): v for k, v in sd["residuals"].items()}


def _completed(value: torch.Tensor) -> torch.futures.Future[torch.Tensor]:
    fut: torch.futures.Future = torch.futures.Future()
    fut.set_result(value)
    return fut


def gtc_hook(state: GTCState, bucket) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook: ``ddp_model.register_comm_hook(GTCState(cfg), gtc_hook)``."""
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    world = dist.get_world_size(group)
    buf = bucket.buffer()
    numel, nbytes = buf.numel(), buf.numel() * buf.element_size()
    acct = state.accounting
    t0 = time.perf_counter()

    if state.iter < state.cfg.start_iter:
        acct.add(payload=nbytes, wire=ring_allreduce_wire(nbytes, world), dense=nbytes,
                 elements_sent=numel, elements_total=numel)
        state.maybe_increase_iter(bucket)
        buf.div_(world)

        def _done(f):
            acct.add_seconds(time.perf_counter() - t0)
            return f.value()[0]

        return dist.all_reduce(buf, group=group, async_op=True).get_future().then(_done)

    if numel >= MAX_BUCKET_NUMEL:
        raise RuntimeError(f"GTC bucket {bucket.index()} has {numel} elements; codes hold at most "
                           f"{MAX_BUCKET_NUMEL} (lower bucket_cap_mb)")
    idx = bucket.index()
    g = buf.detach().to(torch.float32)
    r = state.residuals.get(idx)
    if r is None or r.numel() != numel or r.device != g.device:
        if r is not None:
            log.warning("GTC bucket %d changed size (%d -> %d): residual restarted", idx, r.numel(), numel)
        r = torch.zeros_like(g)
        state.residuals[idx] = r
    r.add_(g)
    tau = state.threshold(r)
    state.last_tau[idx] = tau
    codes = gtc_encode(r, tau)
    n = codes.numel()

    header = torch.tensor([n, 0], dtype=torch.int32)
    header[1:].view(torch.float32)[0] = tau
    header = header.to(buf.device)
    headers = [torch.empty_like(header) for _ in range(world)]
    dist.all_gather(headers, header, group=group)
    hs = torch.stack(headers).cpu()
    counts: List[int] = hs[:, 0].tolist()
    taus: List[float] = hs[:, 1].contiguous().view(torch.float32).tolist()
    m = max(counts)
    acct.add(payload=CODE_BYTES * n + HEADER_BYTES, wire=ring_allgather_wire(HEADER_BYTES + CODE_BYTES * m, world),
             dense=nbytes, elements_sent=n, elements_total=numel, collectives=2)

    track = state.cfg.track_mass
    if track:
        own = gtc_decode(codes, tau, torch.zeros(numel, dtype=torch.float32, device=buf.device))
        state.mass_in[idx] = state.mass_in.get(idx, torch.zeros(numel, dtype=torch.float64,
                                                                device=buf.device)) + g.double()
        state.mass_sent[idx] = state.mass_sent.get(idx, torch.zeros(numel, dtype=torch.float64,
                                                                    device=buf.device)) + own.double()
        state.last_sent[idx] = own

    def _decode(outs: Optional[List[torch.Tensor]]) -> torch.Tensor:
        dense = torch.zeros(numel, dtype=torch.float32, device=buf.device)
        if outs is not None:
            for w in range(world):
                if counts[w]:
                    gtc_decode(outs[w][: counts[w]], taus[w], dense)
        dense.div_(world)
        if track:
            state.last_result[idx] = dense.clone()
        acct.add_seconds(time.perf_counter() - t0)
        return dense.to(buf.dtype).view_as(buf)

    state.maybe_increase_iter(bucket)
    if m == 0:
        return _completed(_decode(None))
    padded = torch.zeros(m, dtype=torch.int32, device=buf.device)
    padded[:n] = codes
    outs = [torch.empty(m, dtype=torch.int32, device=buf.device) for _ in range(world)]
    fut = dist.all_gather(outs, padded, group=group, async_op=True).get_future()
    def _after(f):
        f.value()  # re-raises a failed all-gather
        return _decode(outs)

    return fut.then(_after)


def register_gtc(ddp_model, cfg: GTCConfig, process_group=None,
                 accounting: Optional[CommAccounting] = None) -> GTCState:
    """Registers the GTC hook on a DistributedDataParallel model and returns its state."""
    state = GTCState(cfg, process_group, accounting)
    ddp_model.register_comm_hook(state, gtc_hook)
    return state
