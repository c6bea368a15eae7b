"""One entry point for the four sync modes, usable from any training loop.

    sync = make_sync(SyncConfig(mode="gtc", gtc_target_fraction=1e-3), model, optimizer)
    model = sync.model                     # DDP-wrapped for ddp/gtc, the model itself for bmuf/ma
    for step, batch in enumerate(batches):
        loss(model, batch).backward()
        sync.before_optimizer_step(step)   # bmuf/ma warm-up gradient averaging
        optimizer.step()
        sync.after_optimizer_step(step)    # bmuf/ma block syncs (before zero_grad)
        optimizer.zero_grad()
        if step % 100 == 0: sync.accounting.log_to(tb_writer, step)
    with sync.eval_weights() as m: validate(m); save(m.state_dict())   # BMUF: the filtered model W_g

Modes: ``ddp`` (dense gradient all-reduce, through an accounting copy of torch's allreduce hook), ``gtc``
(:mod:`asrkit.distributed.gtc`), ``bmuf`` (:mod:`asrkit.distributed.bmuf`), ``ma`` (:mod:`asrkit.distributed.averaging`).
Command-line options: :func:`add_sync_args` / :func:`SyncConfig.from_args`. ``simulate_workers`` N > 0
runs N virtual workers in one process instead (:mod:`asrkit.distributed.simulate`).

Non-finite gradients: after the backward pass (and :meth:`Synchronizer.before_optimizer_step`) the
trainer asks :meth:`Synchronizer.grads_finite`, whose answer is the same on every worker (ddp: the
all-reduced gradient; gtc: the flags in the hook's headers; bmuf/ma: one all-reduce of a flag). On False it
skips the optimiser step everywhere (:meth:`Synchronizer.note_skip` counts it, for ``comm.json``); GTC's
residuals are then left as they were before the step.
"""

import argparse
import contextlib
import logging
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Optional

import torch
import torch.distributed as dist

from asrkit.distributed.accounting import CommAccounting
from asrkit.distributed.averaging import ModelAveraging
from asrkit.distributed.bmuf import BMUF, BMUFConfig
from asrkit.distributed.dense import dense_allreduce
from asrkit.distributed.gtc import CODINGS, GTCConfig, GTCState, gtc_hook
from asrkit.utils.cli import parse_bool

MODES = ("ddp", "gtc", "bmuf", "ma")
MAX_SKIPS_LISTED = 100
log = logging.getLogger(__name__)


@dataclass
class SyncConfig:
    mode: str = "ddp"
    sync_period: int = 50                      # bmuf / ma: tau
    block_lr: float = 1.0                      # bmuf: zeta
    block_momentum: Optional[float] = None     # bmuf: eta (None: 1 - 1/N)
    nesterov: bool = True
    reset_optimizer: Optional[bool] = None     # None: True for bmuf, False for ma
    warmup_steps: int = 0                      # bmuf / ma: steps of gradient averaging first
    average_buffers: bool = True
    gtc_threshold: Optional[float] = None
    gtc_target_fraction: Optional[float] = None  # None with no threshold: 1e-3
    gtc_start_iter: int = 1
    gtc_sample_size: int = 65536
    gtc_coding: str = "mean"                   # tau (Strom's +-tau codes) | mean (mean magnitude of the sent)
    gtc_warmup_steps: int = 0                  # DGC sparsity warm-up
    gtc_warmup_fraction: float = 0.25
    gtc_momentum: float = 0.0                  # DGC momentum correction + factor masking
    gtc_local_clip: float = 0.0                # DGC local gradient clipping (max norm)
    gtc_per_tensor: bool = False               # a threshold and magnitude per parameter tensor (layer-wise)
    gtc_sparse_adam: bool = False              # gtc: Adam's second moment corrected for sparse averaged gradients
    bucket_cap_mb: float = 25.0
    seed: int = 0
    max_skipped_steps: int = 10                # consecutive non-finite steps that stop the run (0: never)
    simulate_workers: int = 0                  # > 0: N virtual workers in one process (asrkit.distributed.simulate)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown sync mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.simulate_workers < 0 or self.max_skipped_steps < 0:
            raise ValueError(f"simulate_workers and max_skipped_steps must be >= 0, got {self.simulate_workers}, "
                             f"{self.max_skipped_steps}")
        self.validate()

    def validate(self) -> None:
        if self.mode in ("bmuf", "ma"):
            self.bmuf_config()
        if self.mode == "gtc":
            self.gtc_config()

    def bmuf_config(self) -> BMUFConfig:
        reset = True if self.reset_optimizer is None else self.reset_optimizer
        return BMUFConfig(self.sync_period, self.block_lr, self.block_momentum, self.nesterov, reset,
                          self.warmup_steps, self.average_buffers)

    def gtc_config(self, track_mass: bool = False) -> GTCConfig:
        frac = self.gtc_target_fraction
        if self.gtc_threshold is None and frac is None:
            frac = 1e-3
        return GTCConfig(self.gtc_threshold, frac, self.gtc_start_iter, self.gtc_sample_size, self.seed,
                         track_mass, self.gtc_coding, self.gtc_warmup_steps, self.gtc_warmup_fraction,
                         self.gtc_momentum, self.gtc_local_clip, self.gtc_per_tensor)

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> "SyncConfig":
        return cls(mode=a.sync, sync_period=a.sync_period, block_lr=a.block_lr, block_momentum=a.block_momentum,
                   nesterov=not a.bmuf_classic, reset_optimizer=a.reset_optimizer,
                   warmup_steps=a.sync_warmup_steps, gtc_threshold=a.gtc_threshold,
                   gtc_target_fraction=a.gtc_target_fraction, bucket_cap_mb=a.bucket_cap_mb,
                   gtc_coding=a.gtc_coding, gtc_warmup_steps=a.gtc_warmup_steps,
                   gtc_warmup_fraction=a.gtc_warmup_fraction, gtc_momentum=a.gtc_momentum,
                   gtc_local_clip=a.gtc_local_clip, gtc_per_tensor=a.gtc_per_tensor,
                   gtc_sparse_adam=a.gtc_sparse_adam, max_skipped_steps=a.max_skipped_steps,
                   simulate_workers=a.simulate_workers)

    def to_dict(self) -> dict:
        return asdict(self)


def add_sync_args(p: argparse.ArgumentParser, allow_none: bool = False) -> None:
    """The sync options; ``--sync`` defaults to ddp, or with ``allow_none`` to ``none`` (one process:
    :func:`asrkit.distributed.cli.sync_config_from_args` gives None)."""
    g = p.add_argument_group("distributed synchronisation")
    if allow_none:
        g.add_argument("--sync", choices=("none",) + MODES, default="none",
                       help="none (one process; under torchrun: ddp) | ddp | gtc | bmuf | ma; launch several "
                            "processes with torchrun --nproc_per_node=N -m ...")
    else:
        g.add_argument("--sync", choices=MODES, default="ddp", help="ddp | gtc | bmuf | ma")
    g.add_argument("--sync-period", type=int, default=50, help="bmuf/ma: local steps between syncs (tau)")
    g.add_argument("--block-lr", type=float, default=1.0, help="bmuf: block learning rate zeta")
    g.add_argument("--block-momentum", type=float, default=None, help="bmuf: block momentum eta (1 - 1/N)")
    g.add_argument("--bmuf-classic", action="store_true", help="bmuf: classic instead of Nesterov momentum")
    g.add_argument("--reset-optimizer", type=parse_bool, default=None,
                   help="clear optimiser state after each sync (default: true for bmuf, false for ma)")
    g.add_argument("--sync-warmup-steps", type=int, default=0, help="bmuf/ma: gradient-averaging steps first")
    g.add_argument("--gtc-threshold", type=float, default=None, help="gtc: fixed threshold tau (> 0)")
    g.add_argument("--gtc-target-fraction", type=float, default=None,
                   help="gtc: adaptive tau keeping this fraction of elements per bucket (default 1e-3)")
    g.add_argument("--gtc-coding", choices=CODINGS, default="mean",
                   help="gtc: magnitude a code stands for: tau (Strom) or mean (mean |r| of the sent elements)")
    g.add_argument("--gtc-warmup-steps", type=int, default=0,
                   help="gtc: sparsity warm-up (DGC): the fraction falls from --gtc-warmup-fraction to the "
                        "target over these steps (0: off)")
    g.add_argument("--gtc-warmup-fraction", type=float, default=0.25, help="gtc: fraction sent at step 0 of warm-up")
    g.add_argument("--gtc-momentum", type=float, default=0.0,
                   help="gtc: momentum correction with factor masking (DGC; use an optimiser without momentum)")
    g.add_argument("--gtc-local-clip", type=float, default=0.0,
                   help="gtc: local gradient clipping (DGC): max norm of each worker's gradient (0: off)")
    g.add_argument("--gtc-per-tensor", type=parse_bool, default=False,
                   help="gtc: true: a threshold and a code magnitude per parameter tensor (layer-wise selection, "
                        "as DGC's per-layer top-k; 4 bytes per tensor more per message)")
    g.add_argument("--gtc-sparse-adam", type=parse_bool, default=False,
                   help="gtc with the adam optimiser: true: Adam's second moment scaled by how often each element "
                        "is sent (asrkit.distributed.sparse_adam), so that sparse codes move the weights as "
                        "dense Adam would")
    g.add_argument("--bucket-cap-mb", type=float, default=25.0, help="ddp/gtc: DDP bucket size")
    g.add_argument("--max-skipped-steps", type=int, default=10,
                   help="stop after this many consecutive steps skipped for non-finite gradients (0: never)")
    g.add_argument("--simulate-workers", type=int, default=0,
                   help="N > 0: simulate N data-parallel workers in one process (no torchrun): each takes its "
                        "share of the batches and keeps its own GTC residual or BMUF/MA model")


class AllreduceState:
    def __init__(self, process_group=None, accounting: Optional[CommAccounting] = None):
        self.process_group = process_group
        ws = dist.get_world_size(process_group) if dist.is_initialized() else 1
        self.accounting = accounting or CommAccounting("ddp", ws)


def allreduce_hook(state: AllreduceState, bucket) -> torch.futures.Future[torch.Tensor]:
    """torch's default allreduce hook (divide by N, all-reduce) with byte and time accounting."""
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    t0 = time.perf_counter()
    fut = dense_allreduce(bucket.buffer(), group, state.accounting, t0)
    if bucket.is_last():
        state.accounting.end_step()
    return fut


class Synchronizer:
    """Holds the (wrapped) model, the mode's state and its :class:`CommAccounting`."""

    def __init__(self, cfg: SyncConfig, model: torch.nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
                 process_group=None, device_ids=None, track_mass: bool = False):
        self.cfg = cfg
        self.module = model
        self.process_group = process_group
        self.world_size = dist.get_world_size(process_group) if dist.is_initialized() else 1
        self.accounting = CommAccounting(cfg.mode, self.world_size)
        self.impl = None
        self.state = None
        self.skipped_steps = 0            # optimiser steps skipped for non-finite gradients
        self.consecutive_skips = 0
        self.skipped_at: list = []        # their trainer steps (the first MAX_SKIPS_LISTED)
        if cfg.mode in ("ddp", "gtc"):
            if not dist.is_initialized():
                raise RuntimeError(f"--sync {cfg.mode} needs torch.distributed: launch with torchrun "
                                   "(asrkit.distributed.launch.init_distributed)")
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.model = DDP(model, device_ids=device_ids, process_group=process_group,
                             bucket_cap_mb=cfg.bucket_cap_mb)
            if cfg.mode == "ddp":
                self.state = AllreduceState(process_group, self.accounting)
                self.model.register_comm_hook(self.state, allreduce_hook)
            else:
                total = sum(p.numel() for p in model.parameters() if p.requires_grad)
                self.state = GTCState(cfg.gtc_config(track_mass), process_group, self.accounting,
                                      total_numel=total)
                self.model.register_comm_hook(self.state, gtc_hook)
        elif cfg.mode == "bmuf":
            self.model = model
            self.impl = BMUF(model, cfg.bmuf_config(), optimizer, process_group, self.accounting)
        else:
            self.model = model
            reset = False if cfg.reset_optimizer is None else cfg.reset_optimizer
            self.impl = ModelAveraging(model, cfg.sync_period, cfg.warmup_steps, optimizer, reset,
                                       cfg.average_buffers, process_group, self.accounting)

    def before_optimizer_step(self, step: Optional[int] = None) -> None:
        """bmuf/ma warm-up: gradient averaging; ddp/gtc: nothing (the comm hook did it)."""
        self._impl_hook("before_optimizer_step", step)

    def after_optimizer_step(self, step: Optional[int] = None) -> bool:
        """bmuf/ma: count the step and sync at block ends (True when synced); ddp/gtc: nothing."""
        return bool(self._impl_hook("after_optimizer_step", step))

    def _impl_hook(self, name: str, step: Optional[int]):
        """The bmuf/ma implementation's hook ``name`` (None for ddp/gtc, which have none)."""
        return getattr(self.impl, name)(step) if self.impl is not None else None

    def grads_finite(self) -> bool:
        """Whether every worker's gradient of this step is finite; the same answer on every worker."""
        if self.cfg.mode == "gtc":
            return bool(self.state.step_finite)
        params = [p for p in self.module.parameters() if p.grad is not None]
        ok = all(bool(torch.isfinite(p.grad).all()) for p in params)
        if self.cfg.mode == "ddp" or self.world_size == 1:
            return ok  # ddp: the all-reduced gradient, the same everywhere
        flag = torch.tensor([1 if ok else 0], dtype=torch.int32,
                            device=params[0].grad.device if params else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=self.process_group)
        return bool(flag.item())

    def note_skip(self, step: int, skipped: bool) -> None:
        """Counts a skipped step (or resets the run of skips); raises after ``max_skipped_steps`` in a row."""
        if not skipped:
            self.consecutive_skips = 0
            return
        self.skipped_steps += 1
        self.consecutive_skips += 1
        if len(self.skipped_at) < MAX_SKIPS_LISTED:
            self.skipped_at.append(step)
        log.warning("step %d: a non-finite gradient on some worker: the update is skipped on every worker "
                    "(%d skipped so far, %d in a row)", step, self.skipped_steps, self.consecutive_skips)
        limit = self.cfg.max_skipped_steps
        if limit and self.consecutive_skips >= limit:
            raise FloatingPointError(f"{self.consecutive_skips} consecutive steps up to step {step} had non-finite "
                                     f"gradients (--max-skipped-steps {limit}): training stopped; the last "
                                     f"checkpoint written before them is intact")

    @contextlib.contextmanager
    def eval_weights(self) -> Iterator[torch.nn.Module]:
        """The bare module holding the weights to evaluate or save (BMUF: W_g; MA: the last average,
        temporarily loaded)."""
        if isinstance(self.impl, BMUF):
            with self.impl.global_weights() as m:
                yield m
        elif isinstance(self.impl, ModelAveraging):
            with self.impl.averaged_weights() as m:
                yield m
        else:
            yield self.module

    def skip_state(self) -> dict:
        return {"skipped_steps": self.skipped_steps, "consecutive_skips": self.consecutive_skips,
                "skipped_at": list(self.skipped_at)}

    def load_skip_state(self, sd: dict) -> None:
        self.skipped_steps = sd.get("skipped_steps", 0)
        self.consecutive_skips = sd.get("consecutive_skips", 0)
        self.skipped_at = list(sd.get("skipped_at", []))

    def state_dict(self) -> dict:
        sd = {"mode": self.cfg.mode, "skips": self.skip_state()}
        if self.impl is not None:
            sd["impl"] = self.impl.state_dict()
        elif isinstance(self.state, GTCState):
            sd["gtc"] = self.state.state_dict()
        return sd

    def load_state_dict(self, sd: dict) -> None:
        if sd.get("mode") != self.cfg.mode:
            raise ValueError(f"checkpoint was written with --sync {sd.get('mode')}, not {self.cfg.mode}")
        self.load_skip_state(sd.get("skips", {}))
        if self.impl is not None:
            self.impl.load_state_dict(sd["impl"])
        elif "gtc" in sd:
            self.state.load_state_dict(sd["gtc"])


def make_sync(cfg: SyncConfig, model: torch.nn.Module, optimizer=None, process_group=None,
              device_ids=None):
    """A :class:`Synchronizer`, or with ``cfg.simulate_workers`` a
    :class:`asrkit.distributed.simulate.SimulatedWorkers` (the same interface, plus ``step``)."""
    if cfg.simulate_workers > 0:
        from asrkit.distributed.simulate import SimulatedWorkers  # imports this module: here to avoid a cycle

        return SimulatedWorkers(cfg, model, optimizer, cfg.simulate_workers)
    return Synchronizer(cfg, model, optimizer, process_group, device_ids)


def wrap_model(model: torch.nn.Module, cfg: SyncConfig, optimizer=None, process_group=None,
               device_ids=None) -> torch.nn.Module:
    """The model to train with; its synchroniser is ``model.asrkit_sync`` (hooks: before/after_optimizer_step)."""
    sync = make_sync(cfg, model, optimizer, process_group, device_ids)
    object.__setattr__(sync.model, "asrkit_sync", sync)
    return sync.model
