"""Batch schedules over labelled and machine-labelled batches: interleaved and segregated.

A schedule is a pure function of two batch lists (anything: indices, batch ids, lists of cut ids) and a
:class:`ScheduleConfig`; it never touches the data loader. It yields :class:`ScheduledBatch`
``(kind, batch, lr_mult, step)`` with ``kind`` in ``{"labelled", "machine"}``; the trainer multiplies
its learning rate for that update by ``lr_mult``.

* **interleaved** (the article's choice): ``ratio`` machine batches per labelled batch, spread
  deterministically. With ``ratio = r`` (a float or fraction; ``None``: ``len(machine) / len(labelled)``
  so both lists end together), the next batch is machine-labelled iff machine batches remain and
  ``m + 1 <= r * (l + 1)`` (``m``, ``l`` the numbers of each already scheduled), otherwise labelled;
  when one list runs out the rest of the other follows. ``r = 3``: M M M L M M M L ...
* **segregated**: every machine-labelled batch of the two lists first, then every labelled one (over
  one pair of lists; the article's baseline, over a whole run of many epochs, is :class:`RunSchedule`).

Both see exactly the same batches with the same ``lr_mult`` and the same number of updates; only the
order differs. Both resume exactly from an integer position: ``schedule.iter_from(step)`` continues
at update ``step`` without materialising what came before (O(log n) seek for the interleaved one), and
``schedule[step]`` gives one update. Per-epoch shuffling belongs to whoever makes the two lists (a
seeded sampler); pass the same lists to both modes to compare them.

:class:`RunSchedule` is the schedule of a whole training run, what the students train on: epochs of
``(labelled, machine)`` batch lists (each epoch its own seeded lists), optionally cut at a budget of
updates. Its **interleaved** run is each epoch's interleaved :class:`Schedule`, the last one cut where
the budget ends; its **segregated** run (the article's baseline) holds exactly the same batches with the
same multipliers, ordered over the whole run: every machine-labelled batch of every epoch first (epoch
by epoch, each in its list's order), then every labelled one. The run's epochs (where the trainer
validates and checkpoints) end at the same update counts in both modes. Items are :class:`RunBatch`
``(kind, epoch, batch, lr_mult, step)``: the batch is position ``batch`` of epoch ``epoch``'s list of
that kind, ``step`` its update in the whole run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

LABELLED = "labelled"
MACHINE = "machine"
MODES = ("interleaved", "segregated")


class ScheduledBatch(NamedTuple):
    kind: str  # "labelled" | "machine"
    batch: object  # the element of the labelled or machine list
    lr_mult: float
    step: int  # position in the schedule (0-based)


@dataclass
class ScheduleConfig:
    mode: str = "interleaved"  # interleaved | segregated
    ratio: Optional[Union[float, int, str, Fraction]] = None  # machine batches per labelled batch; None: proportional
    labelled_lr_mult: float = 1.0  # the article raises the learning rate on labelled batches (e.g. 2.0)
    machine_lr_mult: float = 1.0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown schedule mode {self.mode!r}: expected one of {MODES}")
        if self.ratio is not None and Fraction(str(self.ratio)) <= 0:
            raise ValueError(f"ratio must be positive, got {self.ratio}")


class Schedule:
    """``Schedule(labelled_batches, machine_batches, config)``: a sequence of :class:`ScheduledBatch`."""

    def __init__(self, labelled: Sequence, machine: Sequence, config: Optional[ScheduleConfig] = None):
        self.labelled, self.machine = labelled, machine
        self.config = config or ScheduleConfig()
        self.n_l, self.n_m = len(labelled), len(machine)
        r = self.config.ratio
        if r is None:
            r = Fraction(self.n_m, self.n_l) if self.n_l and self.n_m else Fraction(1)
        self.ratio = Fraction(str(r)) if not isinstance(r, Fraction) else r

    def __len__(self) -> int:
        return self.n_l + self.n_m

    # -- interleaved arithmetic (exact, in fractions) -----------------------------------------
    def _labelled_position(self, i: int) -> int:
        """Step at which labelled batch ``i`` is scheduled (interleaved mode)."""
        return i + min(math.floor(self.ratio * (i + 1)), self.n_m)

    def _labelled_before(self, step: int) -> int:
        """Number of labelled batches scheduled at positions < ``step`` (binary search)."""
        lo, hi = 0, self.n_l  # answer in [0, n_l]
        while lo < hi:
            mid = (lo + hi) // 2
            if self._labelled_position(mid) < step:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _item(self, kind: str, idx: int, step: int) -> ScheduledBatch:
        if kind == LABELLED:
            return ScheduledBatch(LABELLED, self.labelled[idx], float(self.config.labelled_lr_mult), step)
        return ScheduledBatch(MACHINE, self.machine[idx], float(self.config.machine_lr_mult), step)

    def iter_from(self, step: int = 0) -> Iterator[ScheduledBatch]:
        """The schedule from update ``step`` on (0 <= step <= len); resuming a killed run continues here."""
        if not 0 <= step <= len(self):
            raise ValueError(f"position {step} outside the schedule of {len(self)} updates")
        if self.config.mode == "segregated":
            for s in range(step, len(self)):
                yield self._item(MACHINE, s, s) if s < self.n_m else self._item(LABELLED, s - self.n_m, s)
            return
        l_done = self._labelled_before(step)
        m_done = step - l_done
        r = self.ratio
        for s in range(step, len(self)):
            if m_done < self.n_m and (l_done >= self.n_l or m_done + 1 <= r * (l_done + 1)):
                yield self._item(MACHINE, m_done, s)
                m_done += 1
            else:
                yield self._item(LABELLED, l_done, s)
                l_done += 1

    def position(self, step: int) -> Tuple[int, int]:
        """``(labelled, machine)``: how many batches of each list come before update ``step``; a consumer
        that resumes at ``step`` continues each list from there."""
        if not 0 <= step <= len(self):
            raise ValueError(f"position {step} outside the schedule of {len(self)} updates")
        if self.config.mode == "segregated":
            m = min(step, self.n_m)
            return step - m, m
        l_done = self._labelled_before(step)
        return l_done, step - l_done

    def __iter__(self) -> Iterator[ScheduledBatch]:
        return self.iter_from(0)

    def __getitem__(self, step: int) -> ScheduledBatch:
        if step < 0:
            step += len(self)
        if not 0 <= step < len(self):
            raise IndexError(step)
        return next(self.iter_from(step))

    def kinds(self) -> str:
        """The order as a string of 'L' / 'M' (for logs and tests)."""
        return "".join("L" if b.kind == LABELLED else "M" for b in self)


class RunBatch(NamedTuple):
    kind: str  # "labelled" | "machine"
    epoch: int  # the epoch whose batch list holds it
    batch: int  # its position in that list
    lr_mult: float
    step: int  # its update in the whole run (0-based)


class RunSchedule:
    """``RunSchedule(sizes, config, budget=None)``: the whole run (module doc). ``sizes[e]`` is
    ``(labelled batches, machine batches)`` of epoch ``e``; with a ``budget`` the run ends after exactly
    that many updates and ``sizes`` must hold at least that many (later epochs are unused); without, it is
    every epoch's batches. ``config.mode`` is ``interleaved`` or ``segregated`` (whole run)."""

    def __init__(self, sizes: Sequence[Tuple[int, int]], config: Optional[ScheduleConfig] = None,
                 budget: Optional[int] = None):
        self.config = config or ScheduleConfig()
        epoch_cfg = ScheduleConfig("interleaved", self.config.ratio, self.config.labelled_lr_mult,
                                   self.config.machine_lr_mult)
        total = sum(a + b for a, b in sizes)
        if budget is not None and (budget < 0 or budget > total):
            raise ValueError(f"a budget of {budget} updates, but the {len(sizes)} epochs given hold {total}")
        left = total if budget is None else budget
        self.epochs: List[Schedule] = []  # each epoch's interleaved schedule (of its full lists)
        self.lengths: List[int] = []  # updates of each epoch of the run
        self.counts: List[Tuple[int, int]] = []  # (labelled, machine) batches each epoch of the run uses
        for n_l, n_m in sizes:
            if left <= 0:
                break
            sch = Schedule(range(n_l), range(n_m), epoch_cfg)
            k = min(len(sch), left)
            n_lab = sch._labelled_before(k)
            self.epochs.append(sch)
            self.lengths.append(k)
            self.counts.append((n_lab, k - n_lab))
            left -= k
        self.starts = [0]
        for k in self.lengths:
            self.starts.append(self.starts[-1] + k)
        self.budget = budget
        # segregated: the machine stream, then the labelled one, each epoch by epoch
        self._m_starts = [0]
        for _, m in self.counts:
            self._m_starts.append(self._m_starts[-1] + m)
        self._l_starts = [0]
        for lab, _ in self.counts:
            self._l_starts.append(self._l_starts[-1] + lab)

    @property
    def num_epochs(self) -> int:
        return len(self.lengths)

    def __len__(self) -> int:
        return self.starts[-1]

    def epoch_len(self, epoch: int) -> int:
        return self.lengths[epoch]

    def _segregated_item(self, p: int) -> RunBatch:
        import bisect

        n_m = self._m_starts[-1]
        if p < n_m:
            e = bisect.bisect_right(self._m_starts, p) - 1
            return RunBatch(MACHINE, e, p - self._m_starts[e], float(self.config.machine_lr_mult), p)
        q = p - n_m
        e = bisect.bisect_right(self._l_starts, q) - 1
        return RunBatch(LABELLED, e, q - self._l_starts[e], float(self.config.labelled_lr_mult), p)

    def epoch_items(self, epoch: int, start: int = 0) -> Iterator[RunBatch]:
        """The updates of the run's epoch ``epoch`` from its update ``start`` on (a resume continues here)."""
        k = self.lengths[epoch]
        if not 0 <= start <= k:
            raise ValueError(f"position {start} outside epoch {epoch} of {k} updates")
        base = self.starts[epoch]
        if self.config.mode == "segregated":
            for p in range(base + start, base + k):
                yield self._segregated_item(p)
            return
        for item in self.epochs[epoch].iter_from(start):
            if item.step >= k:
                return
            yield RunBatch(item.kind, epoch, item.batch, item.lr_mult, base + item.step)

    def __iter__(self) -> Iterator[RunBatch]:
        for e in range(self.num_epochs):
            yield from self.epoch_items(e)

    def kinds(self) -> str:
        return "".join("L" if b.kind == LABELLED else "M" for b in self)


def epoch_sizes_for(size_of, num_epochs: int, budget: Optional[int] = None) -> List[Tuple[int, int]]:
    """``[size_of(e) for e in ...]``: ``num_epochs`` epochs, or with a budget as many as hold it (every
    epoch must have a batch)."""
    if not budget:
        return [size_of(e) for e in range(num_epochs)]
    out, total = [], 0
    while total < budget:
        n = size_of(len(out))
        if sum(n) <= 0:
            raise ValueError(f"epoch {len(out)} has no batches: a budget of {budget} updates cannot be reached")
        out.append(n)
        total += sum(n)
    return out


def make_schedule(labelled: Sequence, machine: Sequence, mode: str = "interleaved", ratio=None,
                  labelled_lr_mult: float = 1.0, machine_lr_mult: float = 1.0) -> Schedule:
    return Schedule(labelled, machine, ScheduleConfig(mode, ratio, labelled_lr_mult, machine_lr_mult))


def iter_schedule(labelled: Sequence, machine: Sequence, config: ScheduleConfig, start: int = 0):
    """Pure-function form: ``for kind, batch, lr_mult, step in iter_schedule(L, M, cfg, start=pos)``."""
    return Schedule(labelled, machine, config).iter_from(start)


def describe(schedule: Schedule) -> List[str]:
    c = schedule.config
    return [f"mode={c.mode}", f"ratio={schedule.ratio}", f"labelled={schedule.n_l}", f"machine={schedule.n_m}",
            f"lr_mult labelled={c.labelled_lr_mult} machine={c.machine_lr_mult}", f"updates={len(schedule)}"]
