from collections import Counter
from fractions import Fraction

import pytest

from asrkit.pseudo.schedule import (LABELLED, MACHINE, RunSchedule, Schedule, ScheduleConfig, epoch_sizes_for,
                                    iter_schedule, make_schedule)


def _greedy(n_l, n_m, r):
    """Straightforward reference of the interleaving rule."""
    out, l, m = [], 0, 0
    while l < n_l or m < n_m:
        if m < n_m and (l >= n_l or m + 1 <= r * (l + 1)):
            out.append(("M", m))
            m += 1
        else:
            out.append(("L", l))
            l += 1
    return out


def test_interleaved_order_and_lr_multipliers():
    L = [f"l{i}" for i in range(4)]
    M = [f"m{i}" for i in range(12)]
    s = make_schedule(L, M, ratio=3, labelled_lr_mult=2.0, machine_lr_mult=0.5)
    assert s.kinds() == "MMML" * 4
    items = list(s)
    assert [b.step for b in items] == list(range(16))
    assert [b.batch for b in items[:5]] == ["m0", "m1", "m2", "l0", "m3"]
    assert all(b.lr_mult == (2.0 if b.kind == LABELLED else 0.5) for b in items)
    kind, batch, lr, step = items[3]
    assert (kind, batch, lr, step) == ("labelled", "l0", 2.0, 3)


def test_ratio_variants_and_tails():
    assert make_schedule(range(3), range(10), ratio=2).kinds() == "MMLMMLMMLMMMM"
    assert make_schedule(range(6), range(2), ratio=Fraction(1, 2)).kinds() == "LMLLMLLL"
    assert make_schedule(range(3), range(0), ratio=2).kinds() == "LLL"
    assert make_schedule(range(0), range(3), ratio=2).kinds() == "MMM"
    # ratio None: proportional, both lists end together
    k = make_schedule(range(3), range(9)).kinds()
    assert k == "MMML" * 3
    assert make_schedule(range(4), range(6), ratio="1.5").kinds() == "MLMMLMLMML"


@pytest.mark.parametrize("n_l,n_m,r", [(4, 12, 3), (7, 5, Fraction(2, 3)), (10, 33, Fraction(7, 2)),
                                      (5, 100, 2), (50, 3, 1), (1, 1, 5), (13, 17, None)])
def test_matches_reference_and_resumes_from_any_position(n_l, n_m, r):
    s = make_schedule(list(range(n_l)), list(range(n_m)), ratio=r)
    full = [(b.kind[0].upper(), b.batch) for b in s]
    ref = _greedy(n_l, n_m, s.ratio)
    assert full == ref
    for pos in range(len(s) + 1):
        assert [(b.kind[0].upper(), b.batch) for b in s.iter_from(pos)] == full[pos:]
        if pos < len(s):
            assert s[pos].step == pos


def test_segregated_sees_same_batches_lrs_and_updates():
    L = [f"l{i}" for i in range(5)]
    M = [f"m{i}" for i in range(17)]
    cfg_i = ScheduleConfig("interleaved", ratio=3, labelled_lr_mult=2.0)
    cfg_s = ScheduleConfig("segregated", ratio=3, labelled_lr_mult=2.0)
    inter = list(Schedule(L, M, cfg_i))
    seg = list(Schedule(L, M, cfg_s))
    assert len(inter) == len(seg) == 22
    key = lambda b: (b.kind, b.batch, b.lr_mult)  # noqa: E731
    assert Counter(map(key, inter)) == Counter(map(key, seg))
    assert "".join("L" if b.kind == LABELLED else "M" for b in seg) == "M" * 17 + "L" * 5
    assert [b.batch for b in seg] == M + L
    assert [b.batch for b in inter if b.kind == MACHINE] == M  # each list keeps its own order
    assert [b.batch for b in inter if b.kind == LABELLED] == L
    for pos in (0, 1, 16, 17, 21, 22):
        assert list(iter_schedule(L, M, cfg_s, start=pos)) == seg[pos:]


def test_killed_run_continues_exactly():
    s = make_schedule(list(range(9)), list(range(40)), ratio=4, labelled_lr_mult=1.5)
    seen = []
    for b in s:
        seen.append(b)
        if b.step == 20:
            break  # killed after update 20; checkpoint says step 21
    seen += list(s.iter_from(21))
    assert seen == list(s)


def test_bad_config():
    with pytest.raises(ValueError):
        ScheduleConfig(mode="random")
    with pytest.raises(ValueError):
        ScheduleConfig(ratio=0)
    with pytest.raises(ValueError):
        list(make_schedule([1], [2]).iter_from(3))


# ------------------------------------------------------------------------------- the whole run

SIZES = [(3, 7), (4, 6), (3, 8), (5, 5)]  # (labelled, machine) batches of each epoch


def _key(b):
    return (b.kind, b.epoch, b.batch, b.lr_mult)


@pytest.mark.parametrize("budget", [None, 10, 23, 31])
def test_whole_run_segregated_is_every_machine_batch_then_every_labelled_one(budget):
    """The segregated run holds exactly the interleaved run's batches (kinds, epochs, positions, LR
    multipliers) and updates: every machine-labelled one of the run first, then every labelled one."""
    inter = RunSchedule(SIZES, ScheduleConfig("interleaved", labelled_lr_mult=2.0), budget)
    seg = RunSchedule(SIZES, ScheduleConfig("segregated", labelled_lr_mult=2.0), budget)
    a, b = list(inter), list(seg)
    n = budget if budget is not None else sum(map(sum, SIZES))
    assert len(a) == len(b) == len(inter) == len(seg) == n
    assert [x.step for x in a] == [x.step for x in b] == list(range(n))
    assert Counter(map(_key, a)) == Counter(map(_key, b)) and a != b
    n_m = sum(1 for x in a if x.kind == MACHINE)
    assert seg.kinds() == "M" * n_m + "L" * (n - n_m)
    for kind in (MACHINE, LABELLED):  # each kind in the run's order: epoch by epoch, each list in its order
        assert [(x.epoch, x.batch) for x in b if x.kind == kind] == [(x.epoch, x.batch) for x in a if x.kind == kind]
    assert all(x.lr_mult == (2.0 if x.kind == LABELLED else 1.0) for x in b)
    # the interleaved run: each epoch's interleaved schedule, the last cut at the budget
    want = []
    for e, (n_l, n_mm) in enumerate(SIZES):
        want += [(k.kind, e, k.batch) for k in make_schedule(range(n_l), range(n_mm))]
    assert [(x.kind, x.epoch, x.batch) for x in a] == want[:n]
    # epochs end at the same updates in both
    assert seg.lengths == inter.lengths and sum(seg.lengths) == n
    for e in range(seg.num_epochs):
        for start in (0, 1, seg.lengths[e]):  # a resume at any position continues exactly
            assert list(seg.epoch_items(e, start)) == b[seg.starts[e] + start:seg.starts[e + 1]]
            assert list(inter.epoch_items(e, start)) == a[inter.starts[e] + start:inter.starts[e + 1]]


def test_segregated_over_the_run_is_not_per_epoch():
    seg = RunSchedule([(2, 3), (2, 3)], ScheduleConfig("segregated"))
    assert seg.kinds() == "MMMMMMLLLL"
    assert [(x.epoch, x.batch) for x in seg] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 0), (0, 1),
                                                 (1, 0), (1, 1)]
    assert seg.lengths == [5, 5]  # validated after update 5 (all machine-labelled) as the interleaved run


def test_budget_sizes_and_errors():
    sizes = epoch_sizes_for(lambda e: (2, 3 + e), num_epochs=99, budget=12)
    assert sizes == [(2, 3), (2, 4), (2, 5)]  # 5 + 6 reach 11 < 12: a third epoch, cut at 1 update
    run = RunSchedule(sizes, ScheduleConfig("interleaved"), 12)
    assert run.lengths == [5, 6, 1] and len(run) == 12
    assert epoch_sizes_for(lambda e: (1, 1), num_epochs=3) == [(1, 1)] * 3
    with pytest.raises(ValueError, match="no batches"):
        epoch_sizes_for(lambda e: (0, 0), num_epochs=1, budget=3)
    with pytest.raises(ValueError, match="budget"):
        RunSchedule([(1, 1)], ScheduleConfig("interleaved"), 5)
