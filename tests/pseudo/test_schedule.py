from collections import Counter
from fractions import Fraction

import pytest

from asrkit.pseudo.schedule import LABELLED, MACHINE, Schedule, ScheduleConfig, iter_schedule, make_schedule


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
