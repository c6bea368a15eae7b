"""Communication accounting: bytes each worker sends, compression against dense all-reduce, seconds.

Two byte counts are kept for every collective, per worker:

* **payload** - the bytes of the tensor this worker contributes, independent of the number of workers and
  of the collective's algorithm. Dense all-reduce: the gradient bytes (numel x element size). GTC: 4 bytes
  per (index, sign) code this worker sends plus an 8-byte header per bucket (count, threshold). BMUF/MA:
  the parameter (and floating buffer) bytes, once per sync. This is the convention of the compression
  ratio: ``ratio = dense-equivalent payload / payload`` over the same steps.
* **wire** - the bytes this worker puts on the network with ring algorithms among N workers:
  ring all-reduce of B bytes sends ``2 (N-1)/N x B``; ring all-gather of b bytes per worker sends
  ``(N-1) x b`` (GTC pads every message to the longest one, so b is the largest count of the bucket).
  With N = 1 nothing goes on the wire.

``comm_seconds`` sums, over collectives, the time from the start of the call (a hook's entry, a sync's
start) to the completion of its result. For DDP hooks the collectives overlap the backward pass, so this
is an upper bound on the exposed communication time; for BMUF/MA syncs it is blocking time.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, Optional


def ring_allreduce_wire(nbytes: float, world_size: int) -> float:
    return 2.0 * (world_size - 1) / world_size * nbytes if world_size > 1 else 0.0


def ring_allgather_wire(nbytes_per_worker: float, world_size: int) -> float:
    return float(world_size - 1) * nbytes_per_worker


@dataclass
class StepStats:
    payload_bytes: int = 0
    wire_bytes: float = 0.0
    dense_bytes: int = 0
    seconds: float = 0.0
    elements_sent: int = 0
    elements_total: int = 0


@dataclass
class CommAccounting:
    """Per-worker communication counters for one sync mode.

    Hooks and synchronisers call :meth:`add` for each collective and :meth:`end_step` once per optimiser
    step. ``log_to(writer, step)`` writes the counters to a TensorBoard ``SummaryWriter``.
    """

    mode: str
    world_size: int = 1
    steps: int = 0
    payload_bytes: int = 0
    wire_bytes: float = 0.0
    dense_bytes: int = 0          # what dense gradient all-reduce would have sent (payload) in the same steps
    comm_seconds: float = 0.0
    collectives: int = 0
    elements_sent: int = 0        # GTC: codes sent; dense: elements
    elements_total: int = 0
    last_step: StepStats = field(default_factory=StepStats)
    _cur: StepStats = field(default_factory=StepStats, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, payload: int = 0, wire: float = 0.0, dense: int = 0, seconds: float = 0.0,
            elements_sent: int = 0, elements_total: int = 0, collectives: int = 1) -> None:
        """Count one collective (or a dense-equivalent only, with collectives=0)."""
        with self._lock:
            self.payload_bytes += int(payload)
            self.wire_bytes += float(wire)
            self.dense_bytes += int(dense)
            self.comm_seconds += float(seconds)
            self.collectives += collectives
            self.elements_sent += int(elements_sent)
            self.elements_total += int(elements_total)
            c = self._cur
            c.payload_bytes += int(payload)
            c.wire_bytes += float(wire)
            c.dense_bytes += int(dense)
            c.seconds += float(seconds)
            c.elements_sent += int(elements_sent)
            c.elements_total += int(elements_total)

    def add_seconds(self, seconds: float) -> None:
        """Completion time of an asynchronous collective already counted with :meth:`add`."""
        with self._lock:
            self.comm_seconds += seconds
            self._cur.seconds += seconds

    def end_step(self) -> None:
        with self._lock:
            self.steps += 1
            self.last_step, self._cur = self._cur, StepStats()

    # ----------------------------------------------------------------- derived numbers
    @property
    def compression_ratio(self) -> float:
        """Dense-equivalent payload / payload sent (inf when nothing was sent)."""
        return self.dense_bytes / self.payload_bytes if self.payload_bytes else float("inf")

    @property
    def wire_compression_ratio(self) -> float:
        dense_wire = ring_allreduce_wire(self.dense_bytes, self.world_size)
        return dense_wire / self.wire_bytes if self.wire_bytes else float("inf")

    @property
    def payload_bytes_per_step(self) -> float:
        return self.payload_bytes / self.steps if self.steps else 0.0

    @property
    def wire_bytes_per_step(self) -> float:
        return self.wire_bytes / self.steps if self.steps else 0.0

    @property
    def fraction_sent(self) -> float:
        return self.elements_sent / self.elements_total if self.elements_total else 0.0

    def summary(self) -> Dict[str, float]:
        return {
            "steps": self.steps, "payload_bytes": self.payload_bytes, "wire_bytes": self.wire_bytes,
            "dense_bytes": self.dense_bytes, "payload_bytes_per_step": self.payload_bytes_per_step,
            "wire_bytes_per_step": self.wire_bytes_per_step, "compression_ratio": self.compression_ratio,
            "wire_compression_ratio": self.wire_compression_ratio, "comm_seconds": self.comm_seconds,
            "collectives": self.collectives, "fraction_sent": self.fraction_sent,
            "elements_sent": self.elements_sent, "elements_total": self.elements_total,
        }

    def log_to(self, writer, step: int, prefix: Optional[str] = None) -> None:
        """Write to a TensorBoard SummaryWriter (or anything with add_scalar)."""
        p = prefix or f"comm/{self.mode}"
        s = self.summary()
        for k in ("payload_bytes", "wire_bytes", "compression_ratio", "comm_seconds", "fraction_sent"):
            v = s[k]
            if v != float("inf"):
                writer.add_scalar(f"{p}/{k}", v, step)
        writer.add_scalar(f"{p}/last_step_payload_bytes", self.last_step.payload_bytes, step)
        writer.add_scalar(f"{p}/last_step_seconds", self.last_step.seconds, step)

    def format(self) -> str:
        s = self.summary()
        return (f"{self.mode}: {s['steps']} steps, {s['payload_bytes_per_step']:.4g} B/step payload, "
                f"{s['wire_bytes_per_step']:.4g} B/step wire, compression x{s['compression_ratio']:.4g}, "
                f"{s['comm_seconds']:.3f} s in communication")
