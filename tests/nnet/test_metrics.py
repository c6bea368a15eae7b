import math

from asrkit.nnet.metrics import Meter, StepStats, Totals


def test_totals_sum_and_rates():
    t = Totals()
    assert t.loss == 0.0 and t.acc == 0.0  # no frames: no division by zero
    t.add(StepStats(3.0, 4, 2, lr=0.1))
    t.add(StepStats(1.0, 4, 4, lr=0.1, kind="soft"))
    assert (t.loss_sum, t.frames, t.correct, t.batches) == (4.0, 8, 6, 2)
    assert math.isclose(t.loss, 0.5) and math.isclose(t.acc, 0.75)


def test_meter_per_kind_only_when_asked():
    plain, kinds = Meter(), Meter(per_kind=True)
    for st in (StepStats(2.0, 2, 1, 0.1, kind="hard"), StepStats(6.0, 3, 3, 0.1, kind="soft"),
               StepStats(0.0, 0, 0, 0.1, kind="hard")):  # a skipped update counts as a batch without frames
        plain.add(st)
        kinds.add(st)
    assert plain.kinds == {} and plain.total == kinds.total
    assert list(kinds.kinds) == ["hard", "soft"]
    assert (kinds.kinds["hard"].frames, kinds.kinds["hard"].batches) == (2, 2)
    assert math.isclose(kinds.kinds["soft"].loss, 2.0)
    assert kinds.seconds() >= 0 and kinds.frames_per_second() >= 0
