"""The distributed bookkeeping of a training run, kept out of the training loop (asrkit/nnet/train.py).

:class:`RankState` is this process's place in the run (rank, world size, whether it writes files) and
every exchange the trainer makes besides the synchroniser's own:

* ``broadcast`` / ``gather`` / ``sum_over_ranks``: objects and epoch totals across ranks;
* ``check_sync``: a hash of the parameters compared across ranks (:class:`SyncDivergedError`);
* ``gather_sync_state`` / ``restore_sync_state``: the checkpoint's ``dist`` section: the sync state
  (once) and each rank's own state (RNG, communication counters; GTC residuals; for bmuf/ma the local
  weights and optimiser), so that a restart with the same world size resumes exactly;
* ``comm_summary``: the record written to ``comm.json`` (every rank's accounting, wall time, a
  cross-rank weight check); :func:`comm_json_text` formats it.

With a world of one every exchange is local (no process group needed). Nothing here imports the
network code: models and optimisers come in as arguments.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
from contextlib import AbstractContextManager
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.distributed as dist

from asrkit.distributed.bmuf import vector_to_parameters

log = logging.getLogger(__name__)

ACCT_FIELDS = ("steps", "payload_bytes", "wire_bytes", "dense_bytes", "comm_seconds", "collectives",
               "elements_sent", "elements_total")
_SUMMARY_FIELDS = ("payload_bytes_per_step", "wire_bytes_per_step", "payload_bytes", "wire_bytes", "dense_bytes",
                   "compression_ratio", "wire_compression_ratio", "comm_seconds", "fraction_sent")


class SyncDivergedError(RuntimeError):
    """Ranks' parameters differ where the sync mode says they must be identical."""


def param_hash(module: torch.nn.Module) -> str:
    """A short hash of every tensor of ``module``'s state dict (bit-exact comparison across ranks)."""
    h = hashlib.blake2b(digest_size=8)
    with torch.no_grad():
        for t in module.state_dict().values():
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def comm_json_text(summary: Dict) -> str:
    """``comm.json``'s text: infinite ratios (no payload) written as null."""
    text = json.dumps(summary, indent=1, default=lambda x: None if x == float("inf") else str(x))
    return text.replace("Infinity", "null") + "\n"


class RankState:
    """This process's rank in a world of ``world_size`` and the trainer's exchanges between ranks."""

    def __init__(self, rank: int = 0, world_size: int = 1):
        self.rank, self.world_size = rank, world_size
        self.is_main = rank == 0
        self.sync_checks = 0  # parameter-hash comparisons made (comm.json)

    # ------------------------------------------------------------------ exchanges
    def broadcast(self, obj: Any, src: int = 0) -> Any:
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def gather(self, obj: Any) -> List[Any]:
        """``obj`` of every rank, on every rank."""
        if self.world_size == 1:
            return [obj]
        out: List[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum_over_ranks(self, values: Sequence[float]) -> List[float]:
        """Element-wise sums over all ranks (float64, so that frame counts stay exact)."""
        if self.world_size == 1:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64)
        dist.all_reduce(t)
        return [float(x) for x in t]

    def check_sync(self, model: torch.nn.Module, mode: str, what: str, step: int) -> List[str]:
        """All-gathers a hash of the parameters; raises :class:`SyncDivergedError` where they differ."""
        hashes = self.gather(param_hash(model))
        self.sync_checks += 1
        if len(set(hashes)) > 1:
            odd = [r for r, h in enumerate(hashes) if h != hashes[0]]
            raise SyncDivergedError(f"--sync {mode}: parameters of rank(s) {odd} differ from rank 0's "
                                    f"after {what} {step}")
        return hashes

    # ------------------------------------------------------------------ checkpoints
    def gather_sync_state(self, sync, model: torch.nn.Module, opt: torch.optim.Optimizer, rng: Dict,
                          simulated: bool = False) -> Optional[Dict]:
        """The checkpoint's ``dist`` section, gathered on rank 0 (None on the others). ``rng``: this
        rank's RNG state; ``simulated``: ``sync`` runs simulated workers (each with its own state)."""
        mode = sync.cfg.mode
        acct = sync.accounting
        mine: Dict[str, Any] = {"rank": self.rank, "rng": rng,
                                "accounting": {k: getattr(acct, k) for k in ACCT_FIELDS}}
        if mode == "gtc" or simulated:
            mine["sync"] = sync.state_dict()  # residuals: each rank's own (simulated: every worker's)
        elif mode in ("bmuf", "ma"):  # between block syncs each rank has its own weights and optimiser state
            mine["model"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            mine["optimizer"] = copy.deepcopy(opt.state_dict())
        if self.world_size > 1:
            ranks = [None] * self.world_size if self.is_main else None
            dist.gather_object(mine, ranks, dst=0)
        else:
            ranks = [mine]
        if not self.is_main:
            return None
        out = {"world_size": self.world_size, "sync_config": sync.cfg.to_dict(), "ranks": ranks}
        if mode != "gtc" and not simulated:
            out["sync"] = sync.state_dict()  # BMUF's W_init, W_g, momentum; MA's counters: the same everywhere
        return out

    def restore_sync_state(self, d: Dict, sync, model: torch.nn.Module, opt: torch.optim.Optimizer,
                           set_rng: Callable[[Dict], None], source) -> bool:
        """Loads a ``dist`` section written by :meth:`gather_sync_state` (``source``: the checkpoint, for
        the log). True when it was written under another sync mode or world size: the caller then moves
        its position in the epoch to the same share."""
        saved_mode = d.get("sync_config", {}).get("mode")
        if saved_mode != sync.cfg.mode:
            log.warning("%s was written with --sync %s, now %s: the sync state starts afresh", source, saved_mode,
                        sync.cfg.mode)
            return True
        mine, rescale = None, False
        if d.get("world_size") == self.world_size:
            mine = d["ranks"][self.rank]
        else:
            log.warning("%s was written by %s processes, now %d: rank-local state (residuals, local weights, "
                        "RNG) is not restored and the run will not match an uninterrupted one",
                        source, d.get("world_size"), self.world_size)
            rescale = True
        sd = d.get("sync") if "sync" in d else (mine or {}).get("sync")
        if sd is not None:
            sync.load_state_dict(sd)
        if mine is not None:
            if "model" in mine:
                model.load_state_dict(mine["model"])
            if "optimizer" in mine:
                opt.load_state_dict(mine["optimizer"])
            set_rng(mine["rng"])
            for k, v in mine.get("accounting", {}).items():
                setattr(sync.accounting, k, v)
        elif sync.cfg.mode == "bmuf":  # continue the block from W_init
            vector_to_parameters(sync.impl.w_init, sync.impl.params)
        return rescale

    # ------------------------------------------------------------------ comm.json
    def comm_summary(self, sync, model: torch.nn.Module, eval_weights: Callable[[], AbstractContextManager],
                     steps: int, steps_this_run: int, seconds: float, simulated_workers: int = 0) -> Optional[Dict]:
        """The ``comm.json`` record on rank 0 (None on the others; a collective: every rank calls it).
        ``eval_weights()``: a context giving the module that is evaluated and saved (BMUF: W_g)."""
        mode = sync.cfg.mode
        summaries = ([a.summary() for a in sync.accountings] if simulated_workers  # every virtual worker
                     else self.gather(sync.accounting.summary()))
        local = self.gather(param_hash(model))
        with eval_weights() as m:
            evalw = self.gather(param_hash(m))
        if not self.is_main:
            return None
        s0 = summaries[0]
        out = {"mode": mode, "world_size": self.world_size, "sync_config": sync.cfg.to_dict(),
               "steps": steps, "steps_this_run": steps_this_run, "train_seconds": round(seconds, 3),
               "seconds_per_step": seconds / max(1, steps_this_run),
               "num_parameters": sum(p.numel() for p in model.parameters())}
        out.update({k: s0[k] for k in _SUMMARY_FIELDS})
        out.update({"payload_bytes_all_ranks": sum(s["payload_bytes"] for s in summaries),
                    "per_rank": summaries, "param_hash": local, "eval_param_hash": evalw,
                    "ranks_identical": len(set(local)) == 1, "eval_ranks_identical": len(set(evalw)) == 1,
                    "sync_checks": self.sync_checks, "skipped_steps": sync.skipped_steps,
                    "skipped_at": list(sync.skipped_at)})
        if simulated_workers:
            out["simulated_workers"] = simulated_workers
            out["world_size"] = simulated_workers
            out["payload_bytes_mean_worker"] = sync.payload_per_worker()
        if mode in ("bmuf", "ma"):
            out["num_syncs"] = sync.impl.num_syncs
        return out
