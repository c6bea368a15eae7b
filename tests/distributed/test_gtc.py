import math

import pytest
import torch

import dist_workers
from asrkit.distributed.gtc import (NONFINITE, GTCConfig, GTCState, adaptive_threshold, gtc_combine, gtc_compress,
                             LOG_RANGE, gtc_decode, gtc_decode_log, gtc_decode_segments, gtc_encode,
                             gtc_encode_log, gtc_encode_segments, log_level_bits)
from asrkit.distributed.sync import SyncConfig


def test_encode_conserves_mass_and_codes():
    r = torch.tensor([0.3, -0.7, 0.05, -0.2, 1.25, 0.0])
    before = r.clone()
    codes, s = gtc_encode(r, 0.25)
    assert s == 0.25
    assert codes.dtype == torch.int32
    assert codes.tolist() == [0 * 2, 1 * 2 + 1, 4 * 2]  # (index, sign bit) for |r| >= tau
    sent = gtc_decode(codes, 0.25, torch.zeros(6))
    assert sent.tolist() == [0.25, -0.25, 0.0, 0.0, 0.25, 0.0]
    torch.testing.assert_close(sent + r, before, rtol=0, atol=1e-7)


def test_encode_many_steps_conserves_mass():
    g = torch.Generator().manual_seed(0)
    r = torch.zeros(1000)
    acc, sent = torch.zeros(1000, dtype=torch.float64), torch.zeros(1000, dtype=torch.float64)
    for _ in range(50):
        grad = torch.randn(1000, generator=g) * 0.01
        r += grad
        acc += grad.double()
        codes, s = gtc_encode(r, 0.02)
        sent += gtc_decode(codes, s, torch.zeros(1000)).double()
    assert (acc - sent - r.double()).abs().max() < 1e-5
    assert r.abs().max() < 0.02 + 0.05  # residual stays bounded by tau plus one gradient


def test_adaptive_threshold_keeps_fraction():
    r = (torch.randperm(1000).float() + 1.0) * (1 - 2 * (torch.arange(1000) % 2))  # distinct |r|
    tau = adaptive_threshold(r, 0.01, sample_size=4096)
    assert (r.abs() >= tau).sum().item() == 10
    big = torch.randn(200_000, generator=torch.Generator().manual_seed(1))
    tau = adaptive_threshold(big, 0.01, sample_size=20_000, generator=torch.Generator().manual_seed(2))
    frac = (big.abs() >= tau).float().mean().item()
    assert 0.007 < frac < 0.013
    assert adaptive_threshold(torch.zeros(10), 0.5, 100) == 0.0
    assert gtc_encode(torch.zeros(10), 0.0)[0].numel() == 0


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan")])
def test_threshold_not_positive_refused(tau):
    with pytest.raises(ValueError, match="threshold must be > 0"):
        GTCConfig(threshold=tau)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        SyncConfig(mode="gtc", gtc_threshold=tau)


def test_config_errors():
    with pytest.raises(ValueError, match="target fraction"):
        GTCConfig(target_fraction=1.5)
    with pytest.raises(ValueError, match="not both"):
        GTCConfig(threshold=0.1, target_fraction=0.1)
    with pytest.raises(ValueError, match="unknown sync mode"):
        SyncConfig(mode="allreduce")
    assert SyncConfig(mode="gtc").gtc_config().target_fraction == 1e-3


def test_gtc_two_ranks(run_workers):
    res = run_workers(dist_workers.gtc_worker)
    for r in res:
        for name, v in r.items():
            assert v["n_buckets"] >= 2, name
            assert v["iters"] == 8
            # sent + residual = accumulated local gradient (float32 rounding of the residual)
            assert v["mass_err"] <= 1e-5 * max(1.0, v["mass_scale"]), (name, v)
            # the decoded average equals the average of what each rank sent
            assert v["n_checks"] > 0 and v["decode_err"] < 1e-6, (name, v)
            # all ranks apply the same gradient: identical parameters
            assert v["param_diff"] == 0.0, (name, v)
            assert 0 < v["fraction_sent"] < 1
    assert math.isclose(res[0]["adaptive"]["fraction_sent"], 0.1 * 7 / 8 + 1 / 8, rel_tol=0.3)


def test_mean_coding_sends_the_mean_magnitude_and_conserves():
    r = torch.tensor([0.3, -0.7, 0.05, -0.2, 1.25, 0.0])
    before = r.clone()
    codes, s = gtc_encode(r, 0.25, "mean")
    assert codes.tolist() == [0, 3, 8]
    assert s == pytest.approx((0.3 + 0.7 + 1.25) / 3)
    sent = gtc_decode(codes, s, torch.zeros(6))
    torch.testing.assert_close(sent + r, before, rtol=0, atol=1e-6)


def test_sparsity_warmup_schedule():
    cfg = GTCConfig(target_fraction=0.001, warmup_steps=11, warmup_fraction=0.25, start_iter=1)
    fr = [cfg.fraction_at(i) for i in range(13)]
    assert fr[1] == pytest.approx(0.25) and fr[11] == fr[12] == 0.001
    assert all(a > b for a, b in zip(fr[1:11], fr[2:12]))
    assert fr[6] == pytest.approx((0.25 * 0.001) ** 0.5)  # geometric: halfway is the geometric mean
    with pytest.raises(ValueError, match="adaptive"):
        GTCConfig(threshold=0.1, warmup_steps=5)
    with pytest.raises(ValueError, match="coding"):
        GTCConfig(target_fraction=0.1, coding="2bit")


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_conservation_with_a_non_finite_element(momentum):
    """A NaN or inf in one step's gradient: nothing sent, residual and velocity as before that step, and
    sum of finite gradients (velocities) = sum sent + residual over the whole run."""
    cfg = GTCConfig(target_fraction=0.1, coding="mean", momentum=momentum, track_mass=True)
    st = GTCState(cfg, rank=0, world_size=1)
    gen = torch.Generator().manual_seed(0)
    for step in range(8):
        g = torch.randn(50, generator=gen)
        if step in (3, 5):
            g[7] = float("nan") if step == 3 else float("inf")
        before_r = {k: v.clone() for k, v in st.residuals.items()}
        before_u = {k: v.clone() for k, v in st.velocities.items()}
        st.begin_bucket()
        n, s, codes = gtc_compress(st, 0, g)
        if step in (3, 5):
            assert n == NONFINITE and codes.numel() == 0
            st.step_finite = False
        out = gtc_combine([n], [s], [codes], 50, "cpu")
        assert st.finish_step() == (step not in (3, 5))
        if step in (3, 5):
            assert torch.isnan(out).all()
            assert all(torch.equal(st.residuals[k], before_r[k]) for k in before_r)
            assert all(torch.equal(st.velocities[k], before_u[k]) for k in before_u)
        else:
            assert torch.isfinite(out).all() and n > 0
    assert torch.isfinite(st.residuals[0]).all()
    err = (st.mass_in[0] - st.mass_sent[0] - st.residuals[0].double()).abs().max().item()
    assert err < 1e-5


def test_step_is_dropped_when_another_worker_is_not_finite():
    """Worker 0 finite, worker 1 not: worker 0's staged residual is dropped too (the step is skipped)."""
    cfg = GTCConfig(target_fraction=0.2, track_mass=True)
    states = [GTCState(cfg, rank=w, world_size=2) for w in range(2)]
    g = torch.arange(10, dtype=torch.float32)
    for st in states:
        st.begin_bucket()
    msgs = [gtc_compress(states[0], 0, g), gtc_compress(states[1], 0, g * float("inf"))]
    assert msgs[1][0] == NONFINITE
    for st in states:
        st.step_finite = False
        st.finish_step()
    assert states[0].residuals[0].abs().sum() == 0 and not states[0].mass_in


def test_nan_at_step_k_two_ranks(run_workers):
    """A NaN injected on rank 1 at step 3: that step is skipped on both ranks for every mode, GTC's
    residuals are as before it, the parameters do not move and stay identical across ranks."""
    res = run_workers(dist_workers.nan_worker)
    for mode in ("ddp", "gtc", "bmuf", "ma"):
        for r in res:
            v = r[mode]
            assert v["finite"] == [True, True, True, False, True, True], (mode, v["finite"])
            assert v["skipped_steps"] == 1 and v["skipped_at"] == [4]
            assert v["moved_at_skip"] == 0.0, mode
            assert v["params_finite"]
            if mode == "gtc":
                assert v["residual_change_at_skip"] == 0.0
                assert v["residual_change_after"] > 0.0  # the next step does change them
        if mode in ("ddp", "gtc"):  # the same update on both ranks
            assert res[0][mode]["params"] == res[1][mode]["params"]


@pytest.mark.parametrize("coding", ["tau", "mean"])
def test_per_tensor_thresholds_send_from_every_tensor_and_conserve(coding):
    sizes = [4, 3]
    r = torch.tensor([10.0, -20.0, 30.0, 1.0, 0.1, -0.3, 0.2])  # the second tensor's values are tiny
    before = r.clone()
    codes, scales = gtc_encode_segments(r, torch.tensor([20.0, 0.25]), sizes, coding)
    assert codes.tolist() == [1 * 2 + 1, 2 * 2, 5 * 2 + 1]  # both tensors send
    want = [20.0, 0.25] if coding == "tau" else [25.0, 0.3]
    assert scales.tolist() == pytest.approx(want)
    sent = gtc_decode_segments(codes, scales, sizes, torch.zeros(7))
    torch.testing.assert_close(sent + r, before, rtol=0, atol=1e-6)
    # a per-tensor state: each tensor keeps its own fraction
    st = GTCState(GTCConfig(target_fraction=0.34, per_tensor=True, track_mass=True), rank=0, world_size=1)
    st.begin_bucket()
    n, s, c = gtc_compress(st, 0, before.clone(), sizes)
    assert n == 2 + 2 and torch.is_tensor(s)  # ceil(0.34 * 4) + ceil(0.34 * 3)
    st.finish_step()
    err = (st.mass_in[0] - st.mass_sent[0] - st.residuals[0].double()).abs().max().item()
    assert err < 1e-5


def test_log_codes_carry_each_magnitude_and_conserve():
    r = torch.tensor([0.5, -3.0, 40.0, -1.0, 0.9], dtype=torch.float32)
    before = r.clone()
    codes, s = gtc_encode_log(r, 1.0)
    assert s == 1.0 and codes.numel() == 3  # |r| >= 1: -3, 40, -1
    sent = gtc_decode_log(codes, s, torch.zeros(5))
    torch.testing.assert_close(sent + r, before, rtol=0, atol=1e-6)  # what is subtracted is what is sent
    bits = log_level_bits(5)
    step = 2 ** (LOG_RANGE / ((1 << bits) - 1))  # the relative spacing of the levels
    for i, want in ((1, -3.0), (2, 40.0), (3, -1.0)):
        assert abs(sent[i] / want - 1) <= (step - 1) / 2 + 1e-6, (i, float(sent[i]))
    assert sent[0] == 0 and sent[4] == 0


def test_log_codes_saturate_and_refuse_huge_buckets():
    r = torch.tensor([2.0 ** 20, 0.0])
    codes, s = gtc_encode_log(r, 1.0)
    sent = gtc_decode_log(codes, s, torch.zeros(2))
    assert sent[0] == pytest.approx(2.0 ** LOG_RANGE) and r[0] == pytest.approx(2.0 ** 20 - 2.0 ** LOG_RANGE)
    assert log_level_bits(1_600_000) == 9
    with pytest.raises(ValueError, match="bucket_cap_mb"):
        log_level_bits(1 << 29)
    with pytest.raises(ValueError, match="log codes"):
        GTCConfig(target_fraction=0.1, coding="log", per_tensor=True)
