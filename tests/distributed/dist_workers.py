"""Worker bodies for the 2-process gloo tests (importable by name so torch.multiprocessing can spawn them).

Each worker writes its results to ``<out>/rank<r>.pt``; the test reads them back.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from asrkit.distributed.accounting import CommAccounting
from asrkit.distributed.bmuf import BMUF, BMUFConfig
from asrkit.distributed.gtc import GTCConfig, GTCState, gtc_hook
from asrkit.distributed.launch import ConfigMismatchError, check_consistency
from asrkit.distributed.sync import SyncConfig, Synchronizer


def _save(out: str, rank: int, obj) -> None:
    torch.save(obj, Path(out) / f"rank{rank}.pt")


def _mlp(seed: int = 0, bn: bool = False) -> torch.nn.Module:
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(6, 16), torch.nn.Tanh()]
    if bn:
        layers.append(torch.nn.BatchNorm1d(16))
    layers += [torch.nn.Linear(16, 3)]
    return torch.nn.Sequential(*layers)


def _batch(rank: int, step: int):
    g = torch.Generator().manual_seed(1000 * rank + step)
    return torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)


def _params_gathered(model: torch.nn.Module, world: int):
    vec = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    out = [torch.empty_like(vec) for _ in range(world)]
    dist.all_gather(out, vec)
    return out


def gtc_worker(rank: int, world: int, out: str) -> None:
    results = {}
    for name, cfg in [("fixed", GTCConfig(threshold=0.02, track_mass=True)),
                      ("adaptive", GTCConfig(target_fraction=0.1, track_mass=True))]:
        model = _mlp(seed=rank)  # different inits: DDP broadcasts rank 0's
        ddp = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.0002)  # several buckets
        state = GTCState(cfg)
        ddp.register_comm_hook(state, gtc_hook)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
        checks = []
        for step in range(8):
            x, y = _batch(rank, step)
            torch.nn.functional.cross_entropy(ddp(x), y).backward()
            opt.step()
            opt.zero_grad()
            if state.iter > cfg.start_iter:
                for idx in state.last_sent:
                    summed = state.last_sent[idx].clone()
                    dist.all_reduce(summed)
                    checks.append((summed / world - state.last_result[idx]).abs().max().item())
        mass = [(state.mass_in[i] - state.mass_sent[i] - state.residuals[i].double()).abs().max().item()
                for i in state.mass_in]
        scale = max(state.mass_in[i].abs().max().item() for i in state.mass_in)
        gathered = _params_gathered(model, world)
        results[name] = {
            "mass_err": max(mass), "mass_scale": scale, "n_buckets": len(state.residuals),
            "decode_err": max(checks), "n_checks": len(checks),
            "param_diff": max((g - gathered[0]).abs().max().item() for g in gathered),
            "fraction_sent": state.accounting.fraction_sent, "iters": state.iter,
        }
    _save(out, rank, results)


def bmuf_sync_worker(rank: int, world: int, out: str) -> None:
    model = _mlp(seed=rank, bn=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    bmuf = BMUF(model, BMUFConfig(sync_period=3, warmup_steps=2), opt)
    diffs = []
    for step in range(9):
        x, y = _batch(rank, step)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        bmuf.before_optimizer_step()
        opt.step()
        synced = bmuf.after_optimizer_step()
        opt.zero_grad()
        g = _params_gathered(model, world)
        diff = max((t - g[0]).abs().max().item() for t in g)
        bufs = torch.cat([b.float().reshape(-1) for b in model.buffers() if b.is_floating_point()])
        gb = [torch.empty_like(bufs) for _ in range(world)]
        dist.all_gather(gb, bufs)
        bdiff = max((t - gb[0]).abs().max().item() for t in gb)
        diffs.append((step + 1, synced, diff, bdiff, len(opt.state)))
    _save(out, rank, {"diffs": diffs, "eta": bmuf.eta, "syncs": bmuf.num_syncs})


def bmuf_vs_pma_worker(rank: int, world: int, out: str) -> None:
    from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

    tau, steps = 3, 10
    base = _mlp(seed=0)
    m_bmuf, m_pma, m_ma = copy.deepcopy(base), copy.deepcopy(base), copy.deepcopy(base)
    o_bmuf = torch.optim.SGD(m_bmuf.parameters(), lr=0.2)
    o_pma = torch.optim.SGD(m_pma.parameters(), lr=0.2)
    o_ma = torch.optim.SGD(m_ma.parameters(), lr=0.2)
    bmuf = BMUF(m_bmuf, BMUFConfig(sync_period=tau, block_momentum=0.0, block_lr=1.0, reset_optimizer=False), o_bmuf)
    # PeriodicModelAverager averages on its 0-based calls k >= warmup with (k - warmup) % period == 0:
    # warmup = tau - 1 puts its averages after steps tau, 2 tau, ... like BMUF's blocks.
    pma = PeriodicModelAverager(period=tau, warmup_steps=tau - 1)
    ma = Synchronizer(SyncConfig(mode="ma", sync_period=tau), m_ma, o_ma)
    for step in range(steps):
        x, y = _batch(rank, step)
        for m, o in ((m_bmuf, o_bmuf), (m_pma, o_pma), (m_ma, o_ma)):
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
        bmuf.after_optimizer_step()
        pma.average_parameters(m_pma.parameters())
        ma.after_optimizer_step()
        for o in (o_bmuf, o_pma, o_ma):
            o.zero_grad()
    v = [torch.nn.utils.parameters_to_vector(m.parameters()).detach() for m in (m_bmuf, m_pma, m_ma)]
    _save(out, rank, {"bmuf_vs_pma": (v[0] - v[1]).abs().max().item(),
                      "ma_vs_pma": (v[2] - v[1]).abs().max().item(),
                      "moved": (v[1] - torch.nn.utils.parameters_to_vector(base.parameters())).abs().max().item(),
                      "syncs": bmuf.num_syncs, "ma_syncs": ma.impl.num_syncs})


def config_worker(rank: int, world: int, out: str) -> None:
    res = {}
    check_consistency({"model": {"layers": 5, "dim": 768}, "sync": "gtc", "tree": "abc"})
    res["same_ok"] = True
    try:
        check_consistency({"model": {"layers": 5, "dim": 768}, "sync": "gtc" if rank == 0 else "bmuf",
                           "tree": "abc"})
        res["mismatch"] = None
    except ConfigMismatchError as e:
        res["mismatch"] = str(e)
    _save(out, rank, res)


def accounting_worker(rank: int, world: int, out: str) -> None:
    """Known gradients: loss = sum(W * C) so dW = C: 16 entries of +-1 and 16 of +-0.01 (32 params, 128 B)."""
    c = torch.full((4, 8), 0.01)
    c[:2] = 1.0
    c = c * (1 if rank == 0 else -1)
    res = {}
    for mode in ("ddp", "gtc", "bmuf", "ma"):
        torch.manual_seed(0)
        model = torch.nn.Linear(8, 4, bias=False)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        cfg = SyncConfig(mode=mode, sync_period=2, gtc_threshold=0.5)
        sync = Synchronizer(cfg, model, opt)
        steps = 3 if mode in ("ddp", "gtc") else 4
        for step in range(steps):
            if mode in ("ddp", "gtc"):
                (sync.model(torch.eye(8)).t() * c).sum().backward()   # eye @ W^T = W^T: sum(W * C)
            else:
                (model.weight * c).sum().backward()
            sync.before_optimizer_step()
            opt.step()
            sync.after_optimizer_step()
            opt.zero_grad()
        res[mode] = sync.accounting.summary()
    _save(out, rank, res)


def _vec(model: torch.nn.Module) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()


def nan_worker(rank: int, world: int, out: str) -> None:
    """The trainer's protocol around each step, with a NaN in rank 1's input at step 3 (0-based)."""
    res = {}
    for mode in ("ddp", "gtc", "bmuf", "ma"):
        model = _mlp(seed=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sync = Synchronizer(SyncConfig(mode=mode, sync_period=2, gtc_target_fraction=0.2), model, opt)
        finite, moved_at_skip, res_at_skip, res_after = [], None, None, None
        for step in range(6):
            x, y = _batch(rank, step)
            if rank == 1 and step == 3:
                x[0, 0] = float("nan")
            st = sync.state
            r_before = {k: v.clone() for k, v in st.residuals.items()} if mode == "gtc" else {}
            w_before = _vec(model)
            torch.nn.functional.cross_entropy(sync.model(x), y).backward()
            sync.before_optimizer_step(step)
            ok = sync.grads_finite()
            sync.note_skip(step + 1, not ok)
            if ok:
                opt.step()
                sync.after_optimizer_step(step)
            opt.zero_grad()
            finite.append(ok)
            change = max(((st.residuals[k] - r_before[k]).abs().max().item() for k in r_before), default=None)
            if step == 3:
                moved_at_skip = (_vec(model) - w_before).abs().max().item()
                res_at_skip = change
            if step == 4:
                res_after = change
        res[mode] = {"finite": finite, "skipped_steps": sync.skipped_steps, "skipped_at": sync.skipped_at,
                     "moved_at_skip": moved_at_skip, "residual_change_at_skip": res_at_skip,
                     "residual_change_after": res_after, "params": _vec(model).tolist(),
                     "params_finite": bool(torch.isfinite(_vec(model)).all())}
    _save(out, rank, res)


def bmuf_len1_vs_ddp_worker(rank: int, world: int, out: str) -> None:
    """BMUF with block length 1, block momentum 0, block LR 1 and plain SGD makes the same updates as ddp."""
    res = {}
    for mode in ("ddp", "bmuf"):
        model = _mlp(seed=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sync = Synchronizer(SyncConfig(mode=mode, sync_period=1, block_momentum=0.0, block_lr=1.0), model, opt)
        for step in range(6):
            x, y = _batch(rank, step)
            torch.nn.functional.cross_entropy(sync.model(x), y).backward()
            sync.before_optimizer_step(step)
            opt.step()
            sync.after_optimizer_step(step)
            opt.zero_grad()
        with sync.eval_weights() as m:
            res[mode] = _vec(m)
    res["moved"] = (res["ddp"] - _vec(_mlp(seed=0))).abs().max().item()
    _save(out, rank, res)


def ma_eval_worker(rank: int, world: int, out: str) -> None:
    """MA (period 3): after step 4 the weights to evaluate and save are the average made at step 3."""
    model = _mlp(seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sync = Synchronizer(SyncConfig(mode="ma", sync_period=3), model, opt)
    avg_at_sync = None
    for step in range(4):
        x, y = _batch(rank, step)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        synced = sync.after_optimizer_step(step)
        opt.zero_grad()
        if synced:
            avg_at_sync = torch.stack(_params_gathered(model, world)).mean(0)
    local = _vec(model)
    with sync.eval_weights() as m:
        evaluated = _vec(m)
    _save(out, rank, {"avg_at_sync": avg_at_sync, "local": local, "evaluated": evaluated,
                      "local_after": _vec(model), "syncs": sync.impl.num_syncs})


SIM_CONFIGS = {
    "ddp": dict(mode="ddp"),
    "gtc_mean": dict(mode="gtc", gtc_target_fraction=0.2, gtc_coding="mean"),
    "gtc_tau_dgc": dict(mode="gtc", gtc_target_fraction=0.1, gtc_coding="tau", gtc_warmup_steps=4,
                        gtc_momentum=0.5, gtc_local_clip=0.5),
    "gtc_per_tensor": dict(mode="gtc", gtc_target_fraction=0.1, gtc_per_tensor=True),
    "gtc_log_sparse_adam": dict(mode="gtc", gtc_target_fraction=0.1, gtc_coding="log", gtc_sparse_adam=True),
    "bmuf": dict(mode="bmuf", sync_period=2, warmup_steps=1),
    "ma": dict(mode="ma", sync_period=2),
}
SIM_STEPS = 6


def sim_batches(step: int, world: int = 2):
    return [_batch(r, step) for r in range(world)]


def sim_loss(model, batch):
    x, y = batch
    loss = torch.nn.functional.cross_entropy(model(x), y)
    return loss, float(loss.detach())


def sim_optimizer(model, kw=None):
    if (kw or {}).get("gtc_sparse_adam"):  # as the trainer: the sparse Adam where GTC asks for it
        from asrkit.distributed.sparse_adam import SparseGradAdam

        return SparseGradAdam(model.parameters(), lr=0.01)
    return torch.optim.Adam(model.parameters(), lr=0.01)


def sim_compare_worker(rank: int, world: int, out: str) -> None:
    """The real runs the simulator is compared with: Adam, clipping at 1.0, the trainer's protocol."""
    res = {}
    for name, kw in SIM_CONFIGS.items():
        model = _mlp(seed=0)
        opt = sim_optimizer(model, kw)
        sync = Synchronizer(SyncConfig(**kw), model, opt)
        traj = []
        for step in range(SIM_STEPS):
            loss, _ = sim_loss(sync.model, sim_batches(step, world)[rank])
            loss.backward()
            sync.before_optimizer_step(step)
            assert sync.grads_finite()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sync.after_optimizer_step(step)
            opt.zero_grad()
            with sync.eval_weights() as m:
                traj.append(_vec(m))
        res[name] = {"traj": traj, "payload": sync.accounting.payload_bytes}
    _save(out, rank, res)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("spawned by tests/distributed/test_*.py")
