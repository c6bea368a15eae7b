"""The dense gradient all-reduce of a DDP bucket, counted: ddp's hook and GTC's warm-up iterations."""
from __future__ import annotations

import time
from typing import Callable, Optional

import torch
import torch.distributed as dist

from asrkit.distributed.accounting import CommAccounting, ring_allreduce_wire


def dense_allreduce(buf: torch.Tensor, group, acct: CommAccounting, t0: Optional[float] = None,
                    on_result: Optional[Callable[[torch.Tensor], None]] = None) -> torch.futures.Future:
    """Averages ``buf`` over ``group`` (divide by N, all-reduce: torch's default hook) asynchronously,
    counting dense payload and ring wire bytes and the seconds from ``t0`` (default: now) to the result;
    ``on_result(averaged)`` sees the result first (e.g. a finiteness check)."""
    t0 = time.perf_counter() if t0 is None else t0
    world = dist.get_world_size(group)
    nbytes = buf.numel() * buf.element_size()
    acct.add(payload=nbytes, wire=ring_allreduce_wire(nbytes, world), dense=nbytes,
             elements_sent=buf.numel(), elements_total=buf.numel())
    buf.div_(world)

    def _done(f):
        acct.add_seconds(time.perf_counter() - t0)
        out = f.value()[0]
        if on_result is not None:
            on_result(out)
        return out

    return dist.all_reduce(buf, group=group, async_op=True).get_future().then(_done)
