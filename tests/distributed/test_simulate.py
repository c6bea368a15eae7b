import pytest
import torch

import dist_workers
from asrkit.distributed.simulate import SimulatedWorkers, bucket_assignment
from asrkit.distributed.sync import SyncConfig


def _simulate(name: str, n: int = 2):
    model = dist_workers._mlp(seed=0)
    opt = dist_workers.sim_optimizer(model, dist_workers.SIM_CONFIGS[name])
    sim = SimulatedWorkers(SyncConfig(**dist_workers.SIM_CONFIGS[name], simulate_workers=n), model, opt, n)
    traj = []
    for step in range(dist_workers.SIM_STEPS):
        ok, losses = sim.step(dist_workers.sim_batches(step, n), dist_workers.sim_loss, grad_clip=1.0)
        assert ok and len(losses) == n
        with sim.eval_weights() as m:
            traj.append(dist_workers._vec(m))
    return traj, sim


def test_simulated_two_workers_equal_two_gloo_processes(run_workers):
    real = run_workers(dist_workers.sim_compare_worker)
    for name in dist_workers.SIM_CONFIGS:
        traj, sim = _simulate(name)
        moved = (traj[-1] - traj[0]).abs().max().item()
        assert moved > 1e-3, name
        for step, (a, b) in enumerate(zip(traj, real[0][name]["traj"])):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"{name} step {step + 1}")
        assert sim.accounting.payload_bytes == real[0][name]["payload"], name


def test_simulated_bmuf_skip_and_local_models():
    traj, sim = _simulate("bmuf", n=4)
    assert sim.impl.num_syncs == 2 and sim.impl.eta == pytest.approx(0.75)
    # after a sync every worker starts from W_init; after a local step they differ
    model = sim.model
    x, y = dist_workers._batch(0, 99)
    x[0, 0] = float("nan")
    batches = dist_workers.sim_batches(99, 4)
    batches[2] = (x, y)
    before = [w.clone() for w in sim.worker_params]
    ok, _ = sim.step(batches, dist_workers.sim_loss, 1.0)
    assert not ok and all(torch.equal(a, b) for a, b in zip(before, sim.worker_params))
    assert sim.impl.num_steps == 6  # the skipped step does not count
    ok, _ = sim.step(dist_workers.sim_batches(100, 4), dist_workers.sim_loss, 1.0)
    assert ok and sim.impl.num_syncs == 3  # step 7 ends a block: every worker from W_init
    assert all(torch.equal(w, sim.worker_params[0]) for w in sim.worker_params)
    ok, _ = sim.step(dist_workers.sim_batches(101, 4), dist_workers.sim_loss, 1.0)
    assert ok and not torch.equal(sim.worker_params[0], sim.worker_params[1])
    assert model is sim.model


def test_bucket_assignment_follows_ddp():
    params = [torch.nn.Parameter(torch.zeros(n)) for n in (100_000, 300_000, 200_000, 10)]
    # reverse order; first bucket 1 MB (262144 floats), then 25 MB
    assert bucket_assignment(params, 25.0) == [[3, 2], [1, 0]]
    assert bucket_assignment(params, 0.5) == [[3], [2], [1], [0]]
