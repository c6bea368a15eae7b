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
(:mod:`asrkit.dist.gtc`), ``bmuf`` (:mod:`asrkit.dist.bmuf`), ``ma`` (:mod:`asrkit.dist.averaging`).
Command-line options: :func:`add_sync_args` / :func:`SyncConfig.from_args`.
"""

import argparse
import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Optional

import torch
import torch.distributed as dist

from asrkit.dist.accounting import CommAccounting, ring_allreduce_wire
from asrkit.dist.averaging import ModelAveraging
from asrkit.dist.bmuf import BMUF, BMUFConfig
from asrkit.dist.gtc import GTCConfig, GTCState, gtc_hook

MODES = ("ddp", "gtc", "bmuf", "ma")


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
    bucket_cap_mb: float = 25.0
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown sync mode {self.mode!r}; choose one of {', '.join(MODES)}")
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
                         track_mass)

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> "SyncConfig":
        return cls(mode=a.sync, sync_period=a.sync_period, block_lr=a.block_lr, block_momentum=a.block_momentum,
                   nesterov=not a.bmuf_classic, reset_optimizer=a.reset_optimizer,
                   warmup_steps=a.sync_warmup_steps, gtc_threshold=a.gtc_threshold,
                   gtc_target_fraction=a.gtc_target_fraction, bucket_cap_mb=a.bucket_cap_mb)

    def to_dict(self) -> dict:
        return asdict(self)


def add_sync_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("distributed synchronisation")
    g.add_argument("--sync", choices=MODES, default="ddp", help="ddp | gtc | bmuf | ma")
    g.add_argument("--sync-period", type=int, default=50, help="bmuf/ma: local steps between syncs (tau)")
    g.add_argument("--block-lr", type=float, default=1.0, help="bmuf: block learning rate zeta")
    g.add_argument("--block-momentum", type=float, default=None, help="bmuf: block momentum eta (1 - 1/N)")
    g.add_argument("--bmuf-classic", action="store_true", help="bmuf: classic instead of Nesterov momentum")
    g.add_argument("--reset-optimizer", type=lambda s: s.lower() in ("1", "true", "yes"), default=None,
                   help="clear optimiser state after each sync (default: true for bmuf, false for ma)")
    g.add_argument("--sync-warmup-steps", type=int, default=0, help="bmuf/ma: gradient-averaging steps first")
    g.add_argument("--gtc-threshold", type=float, default=None, help="gtc: fixed threshold tau (> 0)")
    g.add_argument("--gtc-target-fraction", type=float, default=None,
                   help="gtc: adaptive tau keeping this fraction of elements per bucket (default 1e-3)")
    g.add_argument("--bucket-cap-mb", type=float, default=25.0, help="ddp/gtc: DDP bucket size")


class AllreduceState:
    def __init__(self, process_group=None, accounting: Optional[CommAccounting] = None):
        self.process_group = process_group
        ws = dist.get_world_size(process_group) if dist.is_initialized() else 1
        self.accounting = accounting or CommAccounting("ddp", ws)


def allreduce_hook(state: AllreduceState, bucket) -> torch.futures.Future[torch.Tensor]:
    """torch's default allreduce hook (divide by N, all-reduce) with byte and time accounting."""
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    world = dist.get_world_size(group)
    buf = bucket.buffer()
    nbytes = buf.numel() * buf.element_size()
    acct = state.accounting
    acct.add(payload=nbytes, wire=ring_allreduce_wire(nbytes, world), dense=nbytes,
             elements_sent=buf.numel(), elements_total=buf.numel())
    if bucket.is_last():
        acct.end_step()
    t0 = time.perf_counter()
    buf.div_(world)

    def _done(f):
        acct.add_seconds(time.perf_counter() - t0)
        return f.value()[0]

    return dist.all_reduce(buf, group=group, async_op=True).get_future().then(_done)


class Synchronizer:
    """Holds the (wrapped) model, the mode's state and its :class:`CommAccounting`."""

    def __init__(self, cfg: SyncConfig, model: torch.nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
                 process_group=None, device_ids=None, track_mass: bool = False):
        self.cfg = cfg
        self.module = model
        self.world_size = dist.get_world_size(process_group) if dist.is_initialized() else 1
        self.accounting = CommAccounting(cfg.mode, self.world_size)
        self.impl = None
        self.state = None
        if cfg.mode in ("ddp", "gtc"):
            if not dist.is_initialized():
                raise RuntimeError(f"--sync {cfg.mode} needs torch.distributed: launch with torchrun "
                                   "(asrkit.dist.launch.init_distributed)")
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.model = DDP(model, device_ids=device_ids, process_group=process_group,
                             bucket_cap_mb=cfg.bucket_cap_mb)
            if cfg.mode == "ddp":
                self.state = AllreduceState(process_group, self.accounting)
                self.model.register_comm_hook(self.state, allreduce_hook)
            else:
                self.state = GTCState(cfg.gtc_config(track_mass), process_group, self.accounting)
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
        if self.impl is not None:
            self.impl.before_optimizer_step(step)

    def after_optimizer_step(self, step: Optional[int] = None) -> bool:
        """bmuf/ma: count the step and sync at block ends (True when synced); ddp/gtc: nothing."""
        return self.impl.after_optimizer_step(step) if self.impl is not None else False

    @contextlib.contextmanager
    def eval_weights(self) -> Iterator[torch.nn.Module]:
        """The bare module holding the weights to evaluate or save (BMUF: W_g, temporarily loaded)."""
        if isinstance(self.impl, BMUF):
            with self.impl.global_weights() as m:
                yield m
        else:
            yield self.module

    def state_dict(self) -> dict:
        sd = {"mode": self.cfg.mode}
        if self.impl is not None:
            sd["impl"] = self.impl.state_dict()
        elif isinstance(self.state, GTCState):
            sd["gtc"] = self.state.state_dict()
        return sd

    def load_state_dict(self, sd: dict) -> None:
        if sd.get("mode") != self.cfg.mode:
            raise ValueError(f"checkpoint was written with --sync {sd.get('mode')}, not {self.cfg.mode}")
        if self.impl is not None:
            self.impl.load_state_dict(sd["impl"])
        elif "gtc" in sd:
            self.state.load_state_dict(sd["gtc"])


def make_sync(cfg: SyncConfig, model: torch.nn.Module, optimizer=None, process_group=None,
              device_ids=None) -> Synchronizer:
    return Synchronizer(cfg, model, optimizer, process_group, device_ids)


def wrap_model(model: torch.nn.Module, cfg: SyncConfig, optimizer=None, process_group=None,
               device_ids=None) -> torch.nn.Module:
    """The model to train with; its synchroniser is ``model.asrkit_sync`` (hooks: before/after_optimizer_step)."""
    sync = make_sync(cfg, model, optimizer, process_group, device_ids)
    object.__setattr__(sync.model, "asrkit_sync", sync)
    return sync.model
