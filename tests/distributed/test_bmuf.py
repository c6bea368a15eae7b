import copy

import pytest
import torch

import dist_workers
from asrkit.distributed.averaging import ModelAveraging
from asrkit.distributed.bmuf import BMUF, BMUFConfig
from asrkit.distributed.sync import SyncConfig, Synchronizer


@pytest.mark.parametrize("tau", [0, -3])
def test_tau_not_positive_refused(tau):
    with pytest.raises(ValueError, match="positive integer"):
        BMUFConfig(sync_period=tau)
    with pytest.raises(ValueError, match="positive integer"):
        SyncConfig(mode="bmuf", sync_period=tau)
    with pytest.raises(ValueError, match="positive integer"):
        SyncConfig(mode="ma", sync_period=tau)
    with pytest.raises(ValueError, match="positive integer"):
        ModelAveraging(torch.nn.Linear(2, 2), sync_period=tau)


@pytest.mark.parametrize("momentum,reset", [(0.0, True), (0.9, False)])
def test_one_worker_equals_local_training(momentum, reset):
    base = dist_workers._mlp(seed=3)
    local, m = copy.deepcopy(base), copy.deepcopy(base)
    o_local = torch.optim.SGD(local.parameters(), lr=0.1, momentum=momentum)
    o = torch.optim.SGD(m.parameters(), lr=0.1, momentum=momentum)
    bmuf = BMUF(m, BMUFConfig(sync_period=2, reset_optimizer=reset), o)
    assert bmuf.eta == 0.0 and bmuf.world_size == 1
    for step in range(6):  # ends on a sync, so W_g is current
        x, y = dist_workers._batch(0, step)
        for model, opt in ((local, o_local), (m, o)):
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        bmuf.after_optimizer_step()
        o_local.zero_grad()
        o.zero_grad()
    assert bmuf.num_syncs == 3
    for a, b in zip(local.parameters(), m.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    with bmuf.global_weights() as g:  # W_g = W_init when eta = 0
        for a, b in zip(local.parameters(), g.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_nesterov_update_by_hand():
    """One worker, eta = 0.5, zeta = 1: W_init(t+1) = W_g + eta D, W_g = W_init(0) + D."""
    m = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(1.0)
    bmuf = BMUF(m, BMUFConfig(sync_period=1, block_momentum=0.5))
    with torch.no_grad():
        m.weight.fill_(3.0)            # the block moved W by G = 2
    bmuf.after_optimizer_step()
    # D = 2, W_g = 3, W_init = 3 + 0.5 * 2 = 4
    assert m.weight.item() == 4.0 and bmuf.w_global.item() == 3.0
    with torch.no_grad():
        m.weight.fill_(5.0)            # G = 1: D = 0.5 * 2 + 1 = 2, W_g = 5, W_init = 6
    bmuf.after_optimizer_step()
    assert m.weight.item() == 6.0 and bmuf.w_global.item() == 5.0
    classic = BMUF(torch.nn.Linear(1, 1, bias=False), BMUFConfig(sync_period=1, block_momentum=0.5,
                                                                 nesterov=False))
    with torch.no_grad():
        classic.model.weight.add_(2.0)
    classic.after_optimizer_step()
    assert torch.equal(classic.model.weight.reshape(-1), classic.w_global)


def test_synchronizer_single_process_bmuf_and_ma():
    m = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="torchrun"):
        Synchronizer(SyncConfig(mode="gtc"), m)
    s = Synchronizer(SyncConfig(mode="ma", sync_period=2), m)
    assert [s.after_optimizer_step() for _ in range(4)] == [False, True, False, True]


def test_bmuf_sync_identical_params(run_workers):
    res = run_workers(dist_workers.bmuf_sync_worker)
    for r in res:
        assert r["eta"] == 0.5 and r["syncs"] == 2
        for step, synced, diff, bdiff, nstate in r["diffs"]:
            if step <= 2:                      # warm-up: averaged gradients keep workers identical
                assert diff == 0.0 and not synced
            if step in (5, 8):                 # blocks end after 2 + 3 and 2 + 6 steps
                assert synced and diff == 0.0 and bdiff == 0.0 and nstate == 0
            if step in (3, 4, 6, 7):           # local steps: workers drift apart
                assert not synced and diff > 0.0


def test_bmuf_eta0_equals_periodic_model_averager(run_workers):
    res = run_workers(dist_workers.bmuf_vs_pma_worker)
    for r in res:
        assert r["syncs"] == 3 and r["ma_syncs"] == 3
        assert r["moved"] > 1e-3
        assert r["bmuf_vs_pma"] < 1e-6
        assert r["ma_vs_pma"] == 0.0


def test_block_length_one_without_momentum_equals_ddp(run_workers):
    res = run_workers(dist_workers.bmuf_len1_vs_ddp_worker)
    for r in res:
        assert r["moved"] > 1e-3
        torch.testing.assert_close(r["bmuf"], r["ddp"], rtol=1e-5, atol=1e-6)


def test_model_averaging_evaluates_and_saves_the_average(run_workers):
    res = run_workers(dist_workers.ma_eval_worker)
    for r in res:
        assert r["syncs"] == 1
        torch.testing.assert_close(r["evaluated"], r["avg_at_sync"], rtol=0, atol=1e-7)
        assert not torch.allclose(r["local"], r["evaluated"])  # one local step after the sync
        assert torch.equal(r["local_after"], r["local"])       # the rank's own weights are restored
    torch.testing.assert_close(res[0]["evaluated"], res[1]["evaluated"], rtol=0, atol=0)


def test_consecutive_skips_stop_the_run_naming_the_step():
    sync = Synchronizer(SyncConfig(mode="bmuf", max_skipped_steps=3), dist_workers._mlp(), None)
    sync.note_skip(5, True)
    sync.note_skip(6, False)
    sync.note_skip(7, True)
    sync.note_skip(8, True)
    with pytest.raises(FloatingPointError, match="3 consecutive steps up to step 9"):
        sync.note_skip(9, True)
    assert sync.skipped_steps == 4 and sync.skipped_at == [5, 7, 8, 9]
