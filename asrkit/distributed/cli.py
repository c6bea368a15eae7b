"""The distributed options of the training tools (train_nnet, train_student) and their launch.

``add_dist_args(p)``: ``--sync none|ddp|gtc|bmuf|ma`` (default none: one process; ddp under torchrun)
with the options of :func:`asrkit.distributed.sync.add_sync_args`, plus ``--dist-backend`` and
``--check-sync-every``; ``sync_config_from_args(a)``: the :class:`SyncConfig` (None for ``--sync none``);
``setup_distributed(backend)``: joins torchrun's process group.
"""
from __future__ import annotations

import argparse
import logging
from typing import Optional

from asrkit.distributed.launch import DistInfo, init_distributed
from asrkit.distributed.sync import SyncConfig, add_sync_args


def add_dist_args(p: argparse.ArgumentParser) -> None:
    add_sync_args(p, allow_none=True)
    g = p.add_argument_group("distributed launch")
    g.add_argument("--dist-backend", default="auto", choices=("auto", "gloo", "nccl"),
                   help="torch.distributed backend under torchrun (auto: nccl on GPUs, gloo on CPU)")
    g.add_argument("--check-sync-every", type=int, default=0,
                   help="debug: every N steps (ddp/gtc) or at every block sync (bmuf/ma) compare a hash of "
                        "the parameters across ranks and stop if they differ (0: only at the end)")


def sync_config_from_args(a: argparse.Namespace) -> Optional[SyncConfig]:
    """A :class:`SyncConfig` from the parsed flags, None for ``--sync none``."""
    if getattr(a, "sync", "none") in (None, "none"):
        return None
    return SyncConfig.from_args(a)


def setup_distributed(backend: str = "auto") -> DistInfo:
    """Joins torchrun's process group when WORLD_SIZE is set (nothing otherwise); ranks other than 0 only
    log warnings and errors."""
    info = init_distributed(backend)
    if info.rank > 0:
        logging.getLogger().setLevel(logging.WARNING)
    return info
