"""GTC: gradient threshold compression (Strom 2015) as a DDP communication hook.

Each worker keeps a residual r per DDP bucket (keyed by ``bucket.index()``). At every step::

    r += g                                   # error feedback: what was not sent stays in r
    S = {i : |r_i| >= tau}
    send (i, sign(r_i)) for i in S, and r_i -= sign(r_i) * s

with the code's magnitude ``s`` (``coding``): ``tau`` (Strom's codes: every sent element moves by tau),
``mean`` (the mean |r_i| over S, so that a code carries the size of what it stands for; default, chosen by
measurement in docs/scaling.md) or ``log`` (each element's own |r_i|: its log2 over tau quantised into the
bits of the int32 code that the index leaves free, so no more bytes; :func:`gtc_encode_log`). Either way
what is subtracted is exactly what is sent, so
``sum of gradients = sum of what was sent + r`` (error feedback loses nothing).

Options from Deep Gradient Compression (Lin et al., ICLR 2018), all off by default:

* ``warmup_steps``: sparsity warm-up: the adaptive fraction falls geometrically from ``warmup_fraction``
  to ``target_fraction`` over the first ``warmup_steps`` iterations;
* ``momentum``: momentum correction: a local velocity ``u = m u + g`` is accumulated into r instead of g,
  and factor masking clears ``u_i`` wherever ``i`` was sent (use it with an optimiser without momentum);
* ``local_clip``: local gradient clipping: each worker clips its bucket gradient to the norm
  ``local_clip * sqrt(bucket share of the parameters) / sqrt(N)`` (times the fp16 loss scale) before
  accumulating it.

Codes are int32 ``index * 2 + (1 if negative else 0)`` (so a bucket may hold up to 2**30 elements); log
codes are ``index << (b + 1) | negative << b | level`` with ``b`` the bits the bucket's index leaves.
Messages have different lengths on different workers, so they are exchanged with two all-gathers: a
synchronous one of an 8-byte header (count, the sender's magnitude s as float32 bits), then an
asynchronous one of the codes padded to the longest message. The hook's future decodes every worker's codes
to ``+-s_w`` at their indices, sums them and divides by the number of workers: that dense tensor is the
bucket's gradient.

Non-finite gradients: a worker whose bucket gradient holds a NaN or an inf sends the count -1 and nothing
else. Every worker sees every header, so all agree that the step is bad (``GTCState.step_finite``); the
bucket's result is NaN (so nothing downstream can mistake it for a gradient) and after the step's last
bucket :meth:`GTCState.finish_step` drops the step's staged residuals on every worker: the residuals stay
as they were before the step. The trainer then skips the optimiser step
(:meth:`asrkit.distributed.sync.Synchronizer.grads_finite`). The header all-gather carries the flag, so the
agreement costs no extra collective.

The per-worker part (:func:`gtc_compress`) and the combination (:func:`gtc_combine`) are plain functions, so
that :mod:`asrkit.distributed.simulate` runs N virtual workers through the same code as the hook.

Threshold: either fixed (``threshold``, must be > 0) or adaptive (``target_fraction``): tau is chosen per
bucket and step as the (1 - f) quantile of |r|, i.e. the k-th largest |r_i| with k = ceil(f n), computed
exactly when the bucket has at most ``sample_size`` elements and otherwise estimated on ``sample_size``
elements drawn uniformly with replacement (seeded per rank). Each worker sends its own magnitude in the
header, so workers may use different thresholds. A residual of all zeros sends nothing.

DDP rebuilds its buckets after the first iteration, so iterations before ``start_iter`` (default 1) use
plain averaging all-reduce and do not touch the residuals. If a bucket's size ever changes the residual
of that index is restarted (logged): the unsent mass is lost.
"""

import logging
import math
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

from asrkit.distributed.accounting import CommAccounting, ring_allgather_wire
from asrkit.distributed.dense import dense_allreduce

log = logging.getLogger(__name__)

HEADER_BYTES = 8
CODE_BYTES = 4
MAX_BUCKET_NUMEL = 1 << 30
CODINGS = ("tau", "mean", "log")
LOG_RANGE = 16.0  # log codes: octaves above tau that the magnitude levels span (larger |r_i| saturate)
CODE_BITS = 31    # a code's bits (a non-negative int32): index, sign, and for log codes a magnitude level
NONFINITE = -1  # the header count of a worker whose bucket gradient is not finite


@dataclass
class GTCConfig:
    threshold: Optional[float] = None         # fixed tau (> 0)
    target_fraction: Optional[float] = None   # adaptive: keep about this fraction of elements per bucket
    start_iter: int = 1                       # plain all-reduce before this iteration (bucket rebuild)
    sample_size: int = 65536                  # adaptive tau: exact below this bucket size, sampled above
    seed: int = 0
    track_mass: bool = False                  # keep float64 sums of input and sent gradients (tests)
    coding: str = "mean"                      # tau: +-tau (Strom) | mean: +-mean |r| of the sent elements
    warmup_steps: int = 0                     # DGC sparsity warm-up (adaptive only)
    warmup_fraction: float = 0.25             # ... starting from this fraction
    momentum: float = 0.0                     # DGC momentum correction + factor masking (0: off)
    local_clip: float = 0.0                   # DGC local gradient clipping: max norm (0: off)
    per_tensor: bool = False                  # a threshold and a code magnitude per parameter tensor

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
        if self.coding not in CODINGS:
            raise ValueError(f"unknown GTC coding {self.coding!r}; choose one of {', '.join(CODINGS)}")
        if self.warmup_steps < 0 or not 0 < self.warmup_fraction <= 1:
            raise ValueError(f"GTC warm-up needs steps >= 0 and a fraction in (0, 1], got "
                             f"{self.warmup_steps}, {self.warmup_fraction}")
        if self.warmup_steps and self.threshold is not None:
            raise ValueError("GTC sparsity warm-up needs an adaptive threshold (--gtc-target-fraction)")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"GTC momentum correction must be in [0, 1), got {self.momentum}")
        if self.coding == "log" and self.per_tensor:
            raise ValueError("GTC log codes carry one threshold per bucket: not with per-tensor thresholds")
        if self.local_clip < 0:
            raise ValueError(f"GTC local clipping norm must be >= 0, got {self.local_clip}")

    def fraction_at(self, it: int) -> float:
        """The adaptive fraction at iteration ``it``: geometric from warmup_fraction to the target."""
        f = self.target_fraction
        if self.warmup_steps and it < self.warmup_steps and self.warmup_fraction > f:
            t = max(0, it - self.start_iter) / max(1, self.warmup_steps - self.start_iter)
            return self.warmup_fraction ** (1 - t) * f ** t
        return f


def _f32(x: float) -> float:
    return float(torch.tensor(x, dtype=torch.float32))


def gtc_encode(residual: torch.Tensor, tau: float, coding: str = "tau") -> Tuple[torch.Tensor, float]:
    """Codes for every |r_i| >= tau (in index order) and their magnitude s (tau, or the mean |r_i| of the
    sent elements, rounded to float32); subtracts sign * s from those r_i in place."""
    if not tau > 0:
        return torch.empty(0, dtype=torch.int32, device=residual.device), 0.0
    idx = (residual.abs() >= tau).nonzero().squeeze(1)
    vals = residual[idx]
    s = tau if coding == "tau" or not idx.numel() else _f32(float(vals.abs().double().mean()))
    neg = vals < 0
    residual[idx] = vals - torch.where(neg, -s, s).to(vals.dtype)
    return (idx * 2 + neg.to(idx.dtype)).to(torch.int32), s


def log_level_bits(numel: int) -> int:
    """Bits of a log code's magnitude level in a bucket of ``numel`` elements: what the index leaves."""
    bits = CODE_BITS - 1 - max(1, (numel - 1).bit_length())
    if bits < 2:
        raise ValueError(f"a GTC bucket of {numel} elements leaves no room for log codes (lower bucket_cap_mb)")
    return bits


def _log_magnitude(level: torch.Tensor, tau: float, bits: int) -> torch.Tensor:
    """tau * 2**(level * LOG_RANGE / (2**bits - 1)) in float32: the one formula of encoder and decoder."""
    step = torch.tensor(LOG_RANGE / ((1 << bits) - 1), dtype=torch.float32, device=level.device)
    return torch.tensor(tau, dtype=torch.float32, device=level.device) * torch.exp2(level.to(torch.float32) * step)


def gtc_encode_log(residual: torch.Tensor, tau: float) -> Tuple[torch.Tensor, float]:
    """Codes for every |r_i| >= tau that carry, in the bits the index leaves free, the log2 of |r_i| / tau
    quantised to ``2**bits`` levels over LOG_RANGE octaves (so a 2-million-element bucket codes magnitudes
    to about 2%, at no more bytes than the sign codes); subtracts each element's coded value in place."""
    if not tau > 0:
        return torch.empty(0, dtype=torch.int32, device=residual.device), 0.0
    bits = log_level_bits(residual.numel())
    top = (1 << bits) - 1
    idx = (residual.abs() >= tau).nonzero().squeeze(1)
    vals = residual[idx]
    level = torch.round(torch.log2(vals.abs().to(torch.float32) / tau) * (top / LOG_RANGE)).long().clamp_(0, top)
    mag = _log_magnitude(level, tau, bits).to(vals.dtype)
    neg = vals < 0
    residual[idx] = vals - torch.where(neg, -mag, mag)
    codes = (idx << (bits + 1)) | (neg.long() << bits) | level
    return codes.to(torch.int32), tau


def gtc_decode_log(codes: torch.Tensor, tau: float, out: torch.Tensor) -> torch.Tensor:
    """Adds each log code's signed magnitude at its index to ``out`` (a flat tensor of the bucket's size)."""
    if codes.numel():
        bits = log_level_bits(out.numel())
        c = codes.long()
        mag = _log_magnitude(c & ((1 << bits) - 1), tau, bits).to(out.dtype)
        neg = ((c >> bits) & 1).to(out.dtype)
        out.index_add_(0, c >> (bits + 1), (1.0 - 2.0 * neg) * mag)
    return out


def gtc_decode(codes: torch.Tensor, tau: float, out: torch.Tensor) -> torch.Tensor:
    """Adds +-tau at the coded indices to ``out`` (a flat tensor) and returns it."""
    if codes.numel():
        c = codes.long()
        vals = (1.0 - 2.0 * (c & 1).to(out.dtype)) * tau
        out.index_add_(0, c >> 1, vals)
    return out


def segment_of(idx: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """The segment (parameter tensor) of each flat index, for segments of ``sizes`` laid end to end."""
    ends = torch.tensor(list(sizes), device=idx.device).cumsum(0)
    return torch.searchsorted(ends, idx, right=True)


def gtc_encode_segments(residual: torch.Tensor, taus: torch.Tensor, sizes: Sequence[int],
                        coding: str = "tau") -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`gtc_encode` with a threshold per segment: codes and a float32 magnitude per segment."""
    tau_el = torch.repeat_interleave(taus, torch.tensor(list(sizes), device=residual.device))
    idx = ((residual.abs() >= tau_el) & (tau_el > 0)).nonzero().squeeze(1)
    vals = residual[idx]
    seg = segment_of(idx, sizes)
    if coding == "tau":
        scales = taus.clone()
    else:
        sums = torch.zeros(len(sizes), dtype=torch.float64, device=residual.device).index_add_(
            0, seg, vals.abs().double())
        cnt = torch.bincount(seg, minlength=len(sizes))
        scales = torch.where(cnt > 0, sums / cnt.clamp(min=1), torch.zeros_like(sums)).float()
    neg = vals < 0
    mag = scales[seg].to(vals.dtype)
    residual[idx] = vals - torch.where(neg, -mag, mag)
    return (idx * 2 + neg.to(idx.dtype)).to(torch.int32), scales


def gtc_decode_segments(codes: torch.Tensor, scales: torch.Tensor, sizes: Sequence[int],
                        out: torch.Tensor) -> torch.Tensor:
    if codes.numel():
        c = codes.long()
        idx = c >> 1
        vals = (1.0 - 2.0 * (c & 1).to(out.dtype)) * scales.to(out.dtype)[segment_of(idx, sizes)]
        out.index_add_(0, idx, vals)
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
    """State of GTC on one worker: residuals (and velocities), iteration, accounting (and mass for tests).

    A step's new residuals are staged in :func:`gtc_compress` and committed by :meth:`finish_step` only if
    every worker's gradient was finite. ``rank``/``world_size`` default to the process group's (the
    simulator gives each virtual worker its own)."""

    def __init__(self, cfg: GTCConfig, process_group=None, accounting: Optional[CommAccounting] = None,
                 rank: Optional[int] = None, world_size: Optional[int] = None, total_numel: int = 0):
        self.cfg = cfg
        self.process_group = process_group
        self.iter = 0
        self.residuals: Dict[int, torch.Tensor] = {}
        self.velocities: Dict[int, torch.Tensor] = {}
        self.last_tau: Dict[int, float] = {}
        ws = dist.get_world_size(process_group) if dist.is_initialized() else 1
        self.world_size = world_size if world_size is not None else ws
        self.rank = rank if rank is not None else (dist.get_rank(process_group) if dist.is_initialized() else 0)
        self.total_numel = total_numel          # for local clipping: the bucket's share of the parameters
        self.grad_scale = 1.0                   # the fp16 loss scale of this step (local clipping)
        self.accounting = accounting or CommAccounting("gtc", self.world_size)
        self._generator: Optional[torch.Generator] = None
        self._pending: Dict[int, tuple] = {}   # bucket -> (new residual, new velocity, mass or None)
        self.step_finite = True                 # every worker's every bucket finite (this or the last step)
        self._in_step = False
        # filled when cfg.track_mass: float64 sums of the local gradients and of what was sent
        self.mass_in: Dict[int, torch.Tensor] = {}
        self.mass_sent: Dict[int, torch.Tensor] = {}
        self.last_sent: Dict[int, torch.Tensor] = {}
        self.last_result: Dict[int, torch.Tensor] = {}

    def maybe_increase_iter(self, bucket_is_last: bool) -> None:
        if bucket_is_last:
            self.iter += 1
            self.accounting.end_step()

    def threshold(self, residual: torch.Tensor) -> float:
        if self.cfg.threshold is not None:
            return _f32(self.cfg.threshold)
        if self._generator is None or self._generator.device != residual.device:
            self._generator = torch.Generator(device=residual.device)
            self._generator.manual_seed(self.cfg.seed * 1000003 + self.rank)
        return _f32(adaptive_threshold(residual, self.cfg.fraction_at(self.iter), self.cfg.sample_size,
                                       self._generator))

    def begin_bucket(self) -> None:
        """Called by the hook for every bucket: the first bucket of a step resets the step's verdict."""
        if not self._in_step:
            self._in_step = True
            self.step_finite = True

    def thresholds(self, residual: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
        """A threshold per segment (per_tensor), float32."""
        out, off = [], 0
        for n in sizes:
            out.append(self.threshold(residual[off: off + n]))
            off += n
        return torch.tensor(out, dtype=torch.float32, device=residual.device)

    def finish_step(self) -> bool:
        """Commits the staged residuals when the step was finite everywhere, else drops them (the residuals
        stay as before the step); the hook calls it after the step's last bucket. Returns the verdict,
        which stays readable in ``step_finite`` until the next step's first bucket."""
        ok = self.step_finite
        if ok:
            for idx, (r, u, mass) in self._pending.items():
                self.residuals[idx] = r
                if u is not None:
                    self.velocities[idx] = u
                if mass is not None:  # tests: float64 sums of what went in and what was sent
                    into, own = mass
                    zero = torch.zeros(r.numel(), dtype=torch.float64, device=r.device)
                    self.mass_in[idx] = self.mass_in.get(idx, zero) + into.double()
                    self.mass_sent[idx] = self.mass_sent.get(idx, zero) + own.double()
        self._pending.clear()
        self._in_step = False
        return ok

    def state_dict(self) -> dict:
        return {"iter": self.iter, "residuals": {k: v.cpu() for k, v in self.residuals.items()},
                "velocities": {k: v.cpu() for k, v in self.velocities.items()}}

    def load_state_dict(self, sd: dict) -> None:
        self.iter = sd["iter"]
        self.residuals = {int(k): v for k, v in sd["residuals"].items()}
        self.velocities = {int(k): v for k, v in sd.get("velocities", {}).items()}


def gtc_compress(state: GTCState, idx: int, grad: torch.Tensor, sizes: Optional[Sequence[int]] = None):
    """One worker's message for bucket ``idx``: ``(count, magnitude, codes)``; count is
    :data:`NONFINITE` (and nothing is staged) when ``grad`` holds a NaN or an inf. The new residual is
    staged for :meth:`GTCState.finish_step`; the committed one is not touched. With ``per_tensor`` and
    the bucket's tensor ``sizes`` (in buffer order) the magnitude is a float32 tensor, one per tensor."""
    cfg = state.cfg
    numel = grad.numel()
    if numel >= MAX_BUCKET_NUMEL:
        raise RuntimeError(f"GTC bucket {idx} has {numel} elements; codes hold at most "
                           f"{MAX_BUCKET_NUMEL} (lower bucket_cap_mb)")
    g = grad.detach().to(torch.float32)
    if not bool(torch.isfinite(g).all()):
        return NONFINITE, 0.0, torch.empty(0, dtype=torch.int32, device=g.device)
    if cfg.local_clip > 0:
        share = numel / state.total_numel if state.total_numel >= numel else 1.0
        limit = cfg.local_clip * math.sqrt(share / state.world_size) * state.grad_scale
        norm = float(g.norm())
        if norm > limit:
            g = g * (limit / norm)
    r = state.residuals.get(idx)
    if r is None or r.numel() != numel or r.device != g.device:
        if r is not None:
            log.warning("GTC bucket %d changed size (%d -> %d): residual restarted", idx, r.numel(), numel)
        r = torch.zeros_like(g)
        state.residuals[idx] = r
        state.velocities.pop(idx, None)
    u = None
    if cfg.momentum > 0:  # momentum correction: accumulate the velocity, not the gradient
        u0 = state.velocities.get(idx)
        u = g.clone() if u0 is None or u0.numel() != numel else u0 * cfg.momentum + g
        r = r + u
    else:
        r = r + g
    if cfg.per_tensor and sizes:
        taus = state.thresholds(r, sizes)
        state.last_tau[idx] = float(taus.max())
        codes, s = gtc_encode_segments(r, taus, sizes, cfg.coding)
    else:
        tau = state.threshold(r)
        state.last_tau[idx] = tau
        codes, s = gtc_encode_log(r, tau) if cfg.coding == "log" else gtc_encode(r, tau, cfg.coding)
    mass = None
    if cfg.track_mass:
        own = _decode_one(codes, s, sizes, torch.zeros(numel, dtype=torch.float32, device=g.device), cfg.coding)
        mass = ((u.clone() if u is not None else g), own)  # u: before factor masking
        state.last_sent[idx] = own
    if u is not None and codes.numel():
        u[codes.long() >> 1] = 0.0  # factor masking
    state._pending[idx] = (r, u, mass)
    return codes.numel(), s, codes


def _decode_one(codes: torch.Tensor, s, sizes, out: torch.Tensor, coding: str = "mean") -> torch.Tensor:
    if torch.is_tensor(s):
        return gtc_decode_segments(codes, s, sizes, out)
    if coding == "log":
        return gtc_decode_log(codes, s, out)
    return gtc_decode(codes, s, out)


def gtc_combine(counts: Sequence[int], scales: Sequence, codes: Optional[Sequence[torch.Tensor]],
                numel: int, device, sizes: Optional[Sequence[int]] = None,
                coding: str = "mean") -> torch.Tensor:
    """The average over workers of their decoded messages (NaN everywhere if any count is NONFINITE);
    a worker's magnitude is a float, or a tensor of one per segment of ``sizes`` (per_tensor)."""
    dense = torch.zeros(numel, dtype=torch.float32, device=device)
    if any(c == NONFINITE for c in counts):
        return dense.fill_(float("nan"))
    if codes is not None:
        for c, s, w in zip(counts, scales, codes):
            if c:
                _decode_one(w[:c], s, sizes, dense, coding)
    return dense.div_(len(counts))


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
    state.begin_bucket()

    if state.iter < state.cfg.start_iter:
        state.maybe_increase_iter(bucket.is_last())
        if bucket.is_last():
            state._in_step = False

        def check(out: torch.Tensor) -> None:
            if not bool(torch.isfinite(out).all()):  # the same sum on every worker: the same verdict
                state.step_finite = False

        return dense_allreduce(buf, group, acct, t0, check)

    idx = bucket.index()
    sizes = [p.numel() for p in bucket.parameters()] if state.cfg.per_tensor else None
    n, s, codes = gtc_compress(state, idx, buf, sizes)
    k = len(sizes) if sizes else 0  # per_tensor: the magnitudes lead the message, as float32 bits

    header = torch.tensor([n, 0], dtype=torch.int32)
    header[1:].view(torch.float32)[0] = 0.0 if k else s
    header = header.to(buf.device)
    headers = [torch.empty_like(header) for _ in range(world)]
    dist.all_gather(headers, header, group=group)
    hs = torch.stack(headers).cpu()
    counts: List[int] = hs[:, 0].tolist()
    scales: List[float] = hs[:, 1].contiguous().view(torch.float32).tolist()
    finite = NONFINITE not in counts
    m = max(counts) if finite else 0
    acct.add(payload=CODE_BYTES * (max(n, 0) + (k if m else 0)) + HEADER_BYTES,
             wire=ring_allgather_wire(HEADER_BYTES + CODE_BYTES * (m + k if m else 0), world),
             dense=nbytes, elements_sent=max(n, 0), elements_total=numel, collectives=2 if m else 1)
    if not finite:
        state.step_finite = False
        log.warning("GTC iteration %d bucket %d: non-finite gradient on rank(s) %s: the step is skipped",
                    state.iter, idx, [w for w, c in enumerate(counts) if c == NONFINITE])

    def _decode(outs: Optional[List[torch.Tensor]]) -> torch.Tensor:
        if k and outs is not None:
            mags = [o[:k].view(torch.float32) for o in outs]
            outs = [o[k:] for o in outs]
        else:
            mags = scales
        dense = gtc_combine(counts, mags, outs, numel, buf.device, sizes, state.cfg.coding)
        if state.cfg.track_mass:
            state.last_result[idx] = dense.clone()
        acct.add_seconds(time.perf_counter() - t0)
        return dense.to(buf.dtype).view_as(buf)

    if bucket.is_last():
        state.finish_step()
    state.maybe_increase_iter(bucket.is_last())
    if m == 0:
        return _completed(_decode(None))
    padded = torch.zeros(k + m, dtype=torch.int32, device=buf.device)
    if k:
        padded[:k] = s.to(buf.device).view(torch.int32)
    padded[k: k + n] = codes
    outs = [torch.empty(k + m, dtype=torch.int32, device=buf.device) for _ in range(world)]
    fut = dist.all_gather(outs, padded, group=group, async_op=True).get_future()

    def _after(f):
        f.value()  # re-raises a failed all-gather
        return _decode(outs)

    return fut.then(_after)


def register_gtc(ddp_model, cfg: GTCConfig, process_group=None,
                 accounting: Optional[CommAccounting] = None) -> GTCState:
    """Registers the GTC hook on a DistributedDataParallel model and returns its state."""
    total = sum(p.numel() for p in ddp_model.parameters() if p.requires_grad)
    state = GTCState(cfg, process_group, accounting, total_numel=total)
    ddp_model.register_comm_hook(state, gtc_hook)
    return state
