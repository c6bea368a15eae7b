"""Process-group set-up from torchrun's environment, rank helpers, a cross-rank configuration check,
a deterministic split of work items by rank, and a local spawner for tests and benchmarks.

One node, two processes on CPU (gloo)::

    torchrun --standalone --nproc_per_node=2 -m asrkit.bin.<train> ... --sync gtc

Several nodes (run the same command on every node; NCCL is chosen automatically on GPUs)::

    torchrun --nnodes=4 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST0:29400 \\
             --rdzv_id=job42 -m asrkit.bin.<train> ... --sync bmuf --sync-period 50

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT; the process
group is initialised with ``init_method="env://"``.  Without those variables (a plain ``python`` run)
:func:`init_distributed` returns a world of one and leaves torch.distributed uninitialised; every helper
here then behaves as the single-process case.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TypeVar

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

T = TypeVar("T")
BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None
    device: str = "cpu"
    initialized: bool = False  # True when this call initialised torch.distributed


def choose_backend(backend: str = "auto") -> str:
    """'auto' gives nccl where CUDA is usable, gloo otherwise; an explicit nccl without CUDA is refused."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise RuntimeError("backend nccl needs CUDA GPUs; use --dist-backend gloo on CPU")
    return backend


def init_distributed(backend: str = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Initialise torch.distributed from torchrun's environment variables (env://).

    Returns the rank information. Without WORLD_SIZE in the environment this is a single-process run and
    nothing is initialised. On NCCL each process is bound to cuda:LOCAL_RANK.
    """
    if dist.is_available() and dist.is_initialized():
        be = dist.get_backend()
        lr = int(os.environ.get("LOCAL_RANK", 0))
        return DistInfo(dist.get_rank(), dist.get_world_size(), lr, be,
                        f"cuda:{lr}" if be == "nccl" else "cpu", False)
    if "WORLD_SIZE" not in os.environ:
        return DistInfo()
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE is set but {', '.join(missing)} is not: launch with torchrun")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    be = choose_backend(backend)
    device = "cpu"
    if be == "nccl":
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    timeout = datetime.timedelta(seconds=timeout_s)
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if restart > 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        # torchrun restarted the workers: its agent's store still holds the previous attempt's gloo
        # addresses under the same keys, and a rank that reads them before its peer rewrites them connects
        # to a dead port ("Connection refused"). A prefix per attempt keeps the attempts apart.
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False,
                              timeout=timeout)
        dist.init_process_group(be, store=dist.PrefixStore(f"asrkit/attempt_{restart}", store), rank=rank,
                                world_size=world, timeout=timeout)
    else:
        dist.init_process_group(be, init_method="env://", rank=rank, world_size=world, timeout=timeout)
    log.info("rank %d/%d (local %d) initialised: backend %s, device %s, master %s:%s", rank, world,
             local_rank, be, device, os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"])
    return DistInfo(rank, world, local_rank, be, device, True)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank(group=None) -> int:
    return dist.get_rank(group) if is_dist() else 0


def get_world_size(group=None) -> int:
    return dist.get_world_size(group) if is_dist() else 1


def is_rank0() -> bool:
    return get_rank() == 0


def barrier(group=None) -> None:
    if is_dist():
        dist.barrier(group=group)


def rank0_only(fn: Callable[..., T]) -> Callable[..., Optional[T]]:
    """Decorator: run ``fn`` on rank 0 only (other ranks get None). No barrier is implied."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs) if is_rank0() else None

    return wrapper


def log_rank0(msg: str, *args, level: int = logging.INFO) -> None:
    if is_rank0():
        log.log(level, msg, *args)


# --------------------------------------------------------------------------- configuration consistency
class ConfigMismatchError(RuntimeError):
    """Raised on every rank when some rank's configuration differs from rank 0's."""


def config_hash(obj: Any) -> str:
    """A stable hash of a configuration: dataclasses, mappings, lists and scalars (others via str)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_checksum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file (e.g. the senone tree), first 16 hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()[:16]


def check_consistency(items: Mapping[str, Any], group=None) -> None:
    """Refuse to start unless every rank has the same configuration.

    ``items`` maps a name (``model_config``, ``sync_mode``, ``tree``...) to a value; each value is hashed
    with :func:`config_hash` (pass :func:`file_checksum` results for files). The hashes are all-gathered;
    every rank raises :class:`ConfigMismatchError` naming each rank that differs from rank 0 and the keys
    that differ, so no rank is left waiting in a collective.
    """
    mine = {str(k): config_hash(v) for k, v in items.items()}
    if not is_dist():
        return
    gathered: List[Optional[Dict[str, str]]] = [None] * get_world_size(group)
    dist.all_gather_object(gathered, mine, group=group)
    ref = gathered[0]
    problems = []
    for r, other in enumerate(gathered):
        if r == 0:
            continue
        keys = sorted(set(ref) | set(other))
        bad = [k for k in keys if ref.get(k) != other.get(k)]
        if bad:
            detail = ", ".join(f"{k} (rank 0 {ref.get(k)} vs rank {r} {other.get(k)})" for k in bad)
            problems.append(f"rank {r} differs from rank 0 in {detail}")
    if problems:
        raise ConfigMismatchError("configuration differs across ranks: " + "; ".join(problems)
                                  + " - every rank must run the same model, sync mode and tree")


# --------------------------------------------------------------------------- splitting work by rank
def shard_items(items: Sequence[T], rank: Optional[int] = None, world_size: Optional[int] = None,
                shuffle: bool = False, seed: int = 0, epoch: int = 0, drop_last: bool = False) -> List[T]:
    """This rank's share of ``items`` (cut ids, batches), like torch's DistributedSampler.

    Deterministic: with ``shuffle`` the order is a permutation seeded by ``seed + epoch`` (identical on
    every rank); then the list is padded by repeating its head (or, with ``drop_last``, truncated) to a
    multiple of the world size so that every rank gets the same number of items (collectives stay in
    step), and rank r takes items r, r+N, r+2N, ...
    """
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    order = list(range(len(items)))
    if shuffle:
        random.Random(seed + epoch).shuffle(order)
    n = len(order)
    if drop_last:
        order = order[: n - n % world_size]
    elif n % world_size and n:
        pad = world_size - n % world_size
        order += (order * (pad // n + 1))[:pad]
    return [items[i] for i in order[rank::world_size]]


# --------------------------------------------------------------------------- local spawning (tests, bench)
def _spawn_entry(rank: int, fn: Callable, world_size: int, init_method: str, backend: str,
                 args: tuple, threads: int) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=120))
    try:
        fn(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def spawn_local(fn: Callable, world_size: int, args: tuple = (), backend: str = "gloo",
                threads: int = 1) -> None:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` fresh processes joined through a file store.

    ``fn`` must be importable by name (a module-level function). An exception in a worker is raised here.
    """
    import torch.multiprocessing as mp

    tmp = tempfile.mkdtemp(prefix="asrkit_dist_")
    try:
        init = Path(tmp, "store").as_uri()
        mp.spawn(_spawn_entry, args=(fn, world_size, init, backend, args, threads), nprocs=world_size,
                 join=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
