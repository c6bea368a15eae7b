import math

import pytest
import torch

import dist_workers
from asrkit.dist.gtc import GTCConfig, adaptive_threshold, gtc_decode, gtc_encode
from asrkit.dist.sync import SyncConfig


def test_encode_conserves_mass_and_codes():
    r = torch.tensor([0.3, -0.7, 0.05, -0.2, 1.25, 0.0])
    before = r.clone()
    codes = gtc_encode(r, 0.25)
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
        sent += gtc_decode(gtc_encode(r, 0.02), 0.02, torch.zeros(1000)).double()
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
    assert gtc_encode(torch.zeros(10), 0.0).numel() == 0


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
