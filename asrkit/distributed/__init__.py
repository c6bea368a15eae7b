"""Distributed synchronisation: torchrun launch helpers, GTC (DDP hook), BMUF, model averaging,
communication accounting and an analytical scaling model; the training loop's rank bookkeeping
(rank_state: cross-rank checks, the checkpoint's dist section, comm.json) and options (cli)."""
from asrkit.distributed.accounting import CommAccounting
from asrkit.distributed.bmuf import BMUF, BMUFConfig
from asrkit.distributed.gtc import GTCConfig, GTCState, gtc_hook, register_gtc
from asrkit.distributed.launch import (ConfigMismatchError, check_consistency, init_distributed, is_rank0,
                                      shard_items)
from asrkit.distributed.rank_state import RankState, SyncDivergedError
from asrkit.distributed.sync import MODES, SyncConfig, Synchronizer, add_sync_args, make_sync, wrap_model

__all__ = ["CommAccounting", "BMUF", "BMUFConfig", "GTCConfig", "GTCState", "gtc_hook", "register_gtc",
           "ConfigMismatchError", "check_consistency", "init_distributed", "is_rank0", "shard_items",
           "MODES", "SyncConfig", "Synchronizer", "add_sync_args", "make_sync", "wrap_model", "RankState",
           "SyncDivergedError"]
