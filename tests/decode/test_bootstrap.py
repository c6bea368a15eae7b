"""The seed-aware bootstrap on constructed cases: exact where the answer is known."""
import numpy as np
import pytest

from asrkit.decode.bootstrap import relative_reduction_gap, seed_utterance_bootstrap, utterance_errors


def _errors(seeds=3, utts=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 5, size=(seeds, utts)).astype(float), np.full(utts, 8.0)


def test_identical_systems_interval_holds_zero():
    e, words = _errors()
    d = seed_utterance_bootstrap(e, e.copy(), words)
    assert d["delta"] == d["rel"] == 0.0
    assert d["delta_lo"] == d["delta_hi"] == d["rel_lo"] == d["rel_hi"] == 0.0  # paired: every draw 0
    assert d["p_better"] == 0.0 and d["seeds"] == 3


def test_one_error_fewer_in_every_utterance_and_seed_is_the_exact_reduction():
    e, words = _errors(seeds=3, utts=10)  # 8 words each: one error fewer is 12.5 points in any draw
    d = seed_utterance_bootstrap(e, e - 1, words)
    assert d["delta"] == d["delta_lo"] == d["delta_hi"] == 12.5
    assert d["p_better"] == 1.0
    # relative: 10 errors less out of the seed-mean total
    assert d["rel"] == pytest.approx(100.0 * 10 / e.sum(1).mean())
    const = np.full((3, 10), 4.0)  # the same errors everywhere: the relative reduction is exact too
    d = seed_utterance_bootstrap(const, const - 1, words)
    assert d["rel"] == d["rel_lo"] == d["rel_hi"] == 25.0


def test_seed_variance_widens_the_interval():
    """A gain that one seed shows and the others do not: significant on utterances alone for that seed,
    not over seeds."""
    base = np.full((3, 40), 2.0)
    cand = base.copy()
    cand[0] -= 1  # seed 1: one error fewer everywhere; seeds 2 and 3: no change
    one = seed_utterance_bootstrap(base[:1], cand[:1], np.full(40, 8.0))
    assert one["delta_lo"] > 0
    three = seed_utterance_bootstrap(base, cand, np.full(40, 8.0))
    assert three["delta_lo"] == 0.0 < three["delta_hi"]  # draws of seeds 2 and 3 only: no gain


def test_one_seed_is_the_paired_utterance_bootstrap():
    e1, words = _errors(seeds=1, utts=30, seed=1)
    e2 = np.maximum(e1 - (np.arange(30) % 2), 0)
    a = seed_utterance_bootstrap(e1[0], e2[0], words, replications=500, seed=4)
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 30, size=(500, 30))
    ref = 100.0 * (e1[0][idx].sum(1) - e2[0][idx].sum(1)) / words[idx].sum(1)
    assert (a["delta_lo"], a["delta_hi"]) == tuple(float(x) for x in np.percentile(ref, [2.5, 97.5]))


def test_shapes_are_checked():
    e, words = _errors()
    with pytest.raises(ValueError, match="same seeds"):
        seed_utterance_bootstrap(e, e[:2], words)
    with pytest.raises(ValueError, match="same seeds"):
        seed_utterance_bootstrap(e, e, words[:3])


def test_gap_between_conditions():
    words = np.full(20, 4.0)
    clean = (np.full((2, 20), 2.0), np.full((2, 20), 1.0), words)  # 50% fewer errors
    noisy = (np.full((2, 20), 4.0), np.full((2, 20), 3.0), words)  # 25% fewer
    g = relative_reduction_gap(clean, noisy)
    assert g["gap"] == g["gap_lo"] == g["gap_hi"] == -25.0
    g = relative_reduction_gap(noisy, clean)
    assert g["gap"] == 25.0


def test_utterance_errors_from_files(tmp_path):
    (tmp_path / "ref").write_text("u1 A B C\nu2 D E\n")
    (tmp_path / "h1").write_text("u1 A X C\n")  # u2 missing: all deletions
    (tmp_path / "h2").write_text("u1 A B C\nu2 D E F\n")
    utts, words, errs = utterance_errors(tmp_path / "ref", [tmp_path / "h1", tmp_path / "h2"])
    assert utts == ["u1", "u2"] and words.tolist() == [3, 2] and errs.tolist() == [[1, 2], [0, 1]]
    with pytest.raises(ValueError, match="no reference for 1"):
        utterance_errors(tmp_path / "ref", [tmp_path / "h1"], ["u1", "u9"])


@pytest.mark.parametrize("seeds", [1, 3])
def test_draws_in_blocks_equal_one_draw(monkeypatch, seeds):
    """The replications drawn in blocks (bounded memory on large test sets) give exactly the intervals of
    one (replications, utterances) draw: the generator's stream continues across the blocks."""
    import asrkit.decode.bootstrap as bs

    rng = np.random.default_rng(7)
    words = rng.integers(1, 8, size=101).astype(np.float64)
    e1 = rng.integers(0, 4, size=(seeds, 101)).astype(np.float64)
    e2 = np.maximum(e1 - rng.integers(0, 2, size=(seeds, 101)), 0)
    monkeypatch.setattr(bs, "BOOTSTRAP_BLOCK", 1 << 30)  # everything in one draw
    want = bs.seed_utterance_bootstrap(e1, e2, words, replications=500, seed=3)
    for block in (101 * 7, 50):  # 7 replications a block; one a block
        monkeypatch.setattr(bs, "BOOTSTRAP_BLOCK", block)
        assert bs.seed_utterance_bootstrap(e1, e2, words, replications=500, seed=3) == want
