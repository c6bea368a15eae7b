"""Teacher/student training under ``torchrun --standalone --nproc_per_node 2`` (gloo, CPU) with every sync mode.

Each test launches torchrun as a subprocess with this file as the entry script (``__main__`` below): it
records which rank wrote which file (checkpoints, config.yaml, comm.json), optionally appends extra flags
on rank 1 (a configuration mismatch), then runs ``asrkit.bin.train_nnet`` or ``asrkit.bin.train_student``
with a step hook that can kill rank 1 after a step (``KILL_ENV``, first attempt only) or make the last
rank's loss NaN at a step (``NAN_ENV``): the faults come from here, not from the training loop.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUM_SENONES = 12
WRITES_ENV = "ASRKIT_TEST_WRITES_DIR"
RANK1_ARGS_ENV = "ASRKIT_TEST_RANK1_ARGS"
KILL_ENV = "ASRKIT_TEST_KILL_AT_STEP"  # rank 1 os._exit(1)s after this step on its first attempt
NAN_ENV = "ASRKIT_TEST_NAN_AT_STEP"    # the last rank's loss is NaN at this step


# --------------------------------------------------------------------------- the torchrun entry
def _fault_hook(rank: int, world: int):
    """The step hook of the faults asked for in the environment (None: none asked)."""
    import logging

    import torch

    from asrkit.nnet.models import LstmAcousticModel

    log = logging.getLogger("test_train_torchrun")
    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
    nan_at = int(os.environ.get(NAN_ENV, "0") or 0) if rank == world - 1 else 0
    first_attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) == 0
    if not (kill_at and rank == 1 and first_attempt) and not nan_at:
        return None
    armed = [nan_at == 1]

    def poison(module, inputs, output):  # the next training forward of the model: NaN logits, so a NaN loss
        if armed[0] and isinstance(module, LstmAcousticModel) and module.training:
            armed[0] = False
            log.warning("%s=%d: a NaN loss on rank %d", NAN_ENV, nan_at, rank)
            return (output[0] * float("nan"),) + tuple(output[1:])
        return None

    if nan_at:
        torch.nn.modules.module.register_module_forward_hook(poison)

    def hook(step: int) -> None:
        if kill_at and rank == 1 and first_attempt and step == kill_at:
            log.error("%s=%d: rank 1 exits at step %d (first attempt only)", KILL_ENV, kill_at, step)
            os._exit(1)
        if nan_at and step == nan_at - 1:
            armed[0] = True

    return hook


def _entry() -> int:
    rank = int(os.environ.get("RANK", "0"))
    argv = sys.argv[2:]
    if rank == 1 and os.environ.get(RANK1_ARGS_ENV):
        argv = argv + os.environ[RANK1_ARGS_ENV].split()
    wdir = os.environ.get(WRITES_ENV)
    if wdir:
        import asrkit.nnet.train as train_mod

        def record(fn):
            def wrapped(path, *a, **kw):
                with open(Path(wdir) / f"writes-rank{rank}.txt", "a") as f:
                    f.write(Path(path).name + "\n")
                return fn(path, *a, **kw)
            return wrapped

        train_mod.save_checkpoint = record(train_mod.save_checkpoint)
        train_mod.atomic_write_text = record(train_mod.atomic_write_text)
    if sys.argv[1] == "train_student":
        from asrkit.bin.train_student import main
    else:
        from asrkit.bin.train_nnet import main
    return main(argv, step_hook=_fault_hook(rank, int(os.environ.get("WORLD_SIZE", "1"))))


if __name__ == "__main__":
    sys.exit(_entry())

# --------------------------------------------------------------------------- the tests
import pytest  # noqa: E402

_RESULTS = {}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    import torch
    from lhotse import CutSet

    from asrkit.features.reader import FeatureReader
    from asrkit.nnet.models import build_model
    from asrkit.nnet.presets import preset
    from asrkit.testing.cuts import make_toy_cmvn, write_toy_cuts
    from asrkit.pseudo.label import label_cuts, merge_indices
    from asrkit.pseudo.shards import tree_checksum

    d = tmp_path_factory.mktemp("torchrun_toy")
    cuts = write_toy_cuts(d / "lab", num_cuts=12, num_senones=NUM_SENONES, seed=1, frames_range=(60, 160))
    make_toy_cmvn(cuts).save(d / "cmvn.npz")
    unl = list(write_toy_cuts(d / "unl", num_cuts=8, num_senones=NUM_SENONES, seed=5, prefix="unl",
                              frames_range=(60, 160), manifest=None))
    for c in unl:
        c.custom = None
    CutSet.from_cuts(unl).to_file(d / "cuts_unsup.jsonl.gz")
    (d / "tree").write_bytes(b"toy senone tree")
    torch.manual_seed(3)
    teacher = build_model(preset("teacher", "tiny", num_senones=NUM_SENONES))
    label_cuts(teacher, unl, FeatureReader(d / "cmvn.npz"), d / "pseudo", shard_size=4, k=5,
               tree_checksum=tree_checksum(d / "tree"), progress=False)
    merge_indices(d / "pseudo")
    return d


def _common(toy: Path, out: Path):
    return ["--cmvn", str(toy / "cmvn.npz"), "--dev-cuts", str(toy / "lab" / "cuts.jsonl.gz"),
            "--num-senones", str(NUM_SENONES), "--preset", "tiny", "--num-epochs", "2", "--num-workers", "0",
            "--max-frames", "120", "--chunk-size", "20", "--left-context", "5", "--min-chunk", "5",
            "--progress", "false", "--num-threads", "1", "--warmup-steps", "2", "--checkpoint-every", "3",
            "--keep-last", "10", "--out-dir", str(out)]


def _nnet_args(toy, out, *extra):
    return ["train_nnet", "--train-cuts", str(toy / "lab" / "cuts.jsonl.gz"), *_common(toy, out), *extra]


def _student_args(toy, out, *extra):
    return ["train_student", "--mode", "interleaved", "--labelled-cuts", str(toy / "lab" / "cuts.jsonl.gz"),
            "--unlabelled-cuts", str(toy / "cuts_unsup.jsonl.gz"), "--pseudo-dir", str(toy / "pseudo"),
            "--tree", str(toy / "tree"), *_common(toy, out), *extra]


def _torchrun(args, tmp: Path, max_restarts: int = 0, env=None, timeout: float = 90.0):
    e = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
             OMP_NUM_THREADS="1", **{WRITES_ENV: str(tmp)}, **(env or {}))
    e.pop("WORLD_SIZE", None)
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2",
           "--max-restarts", str(max_restarts), "--monitor-interval", "0.2", __file__, *args]
    return subprocess.run(cmd, cwd=tmp, env=e, capture_output=True, text=True, timeout=timeout)


def _writes(tmp: Path, rank: int):
    f = tmp / f"writes-rank{rank}.txt"
    return f.read_text().split() if f.exists() else []


@pytest.mark.parametrize("mode", ["ddp", "gtc", "bmuf", "ma"])
def test_sync_mode_under_torchrun(mode, toy, tmp_path):
    out = tmp_path / "out"
    extra = ["--sync", mode, "--check-sync-every", "1", "--sync-period", "5", "--gtc-target-fraction", "0.01"]
    # gtc through the semi-supervised student (the SslTrainer's sharded schedule), the others train_nnet
    args = _student_args(toy, out, *extra) if mode == "gtc" else _nnet_args(toy, out, *extra)
    # gtc: rank 1's loss is NaN at step 4: the step is skipped on both ranks, counted and logged
    r = _torchrun(args, tmp_path, env={NAN_ENV: "4"} if mode == "gtc" else None)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    comm = json.loads((out / "comm.json").read_text())
    assert comm["skipped_steps"] == (1 if mode == "gtc" else 0)
    if mode == "gtc":
        assert comm["skipped_at"] == [4] and "step 4 (epoch 1, batch 3) skipped" in r.stderr
    steps = 20 if mode == "gtc" else 10  # the student adds the machine-labelled batches
    assert comm["mode"] == mode and comm["world_size"] == 2 and comm["steps"] == steps
    # the same weights on both ranks: ddp/gtc checked after every step, bmuf/ma after each block sync
    assert comm["ranks_identical"] and comm["eval_ranks_identical"]
    if mode in ("ddp", "gtc"):
        assert comm["sync_checks"] >= steps
    else:
        assert comm["num_syncs"] == 2 and comm["sync_checks"] == 2
    if mode == "gtc":
        assert comm["compression_ratio"] > 1 and comm["fraction_sent"] < 0.5
    elif mode == "ddp":
        assert comm["compression_ratio"] == pytest.approx(1.0)
    else:
        assert comm["compression_ratio"] == pytest.approx(5.0)  # one parameter exchange per 5 steps
    # rank 0 alone wrote checkpoints, config and comm.json
    w0, w1 = _writes(tmp_path, 0), _writes(tmp_path, 1)
    assert w1 == [], w1
    assert {"checkpoint-3.pt", "epoch-2.pt", "best.pt", "config.yaml", "comm.json"} <= set(w0)
    ck = __import__("torch").load(out / "epoch-2.pt", weights_only=False)
    assert ck["world_size"] == 2 and len(ck["dist"]["ranks"]) == 2
    if mode == "bmuf":
        assert {"w_init", "w_global", "delta"} <= set(ck["dist"]["sync"]["impl"])
        # a relaunch of the finished run trains nothing and keeps the record of the run that trained
        before = (out / "comm.json").read_bytes()
        r2 = _torchrun(args, tmp_path)
        assert r2.returncode == 0, r2.stderr[-3000:]
        assert (out / "comm.json").read_bytes() == before
    assert f"step {steps}" in r.stderr and "communication (rank 0 of 2)" in r.stderr
    assert "rank 1 of 2" not in r.stderr  # rank 1 logs warnings and errors only
    _RESULTS[mode] = comm


def test_killed_worker_restarts_from_checkpoint(toy, tmp_path):
    out = tmp_path / "out"
    extra = ["--sync", "bmuf", "--sync-period", "5"]
    r = _torchrun(_nnet_args(toy, out, *extra), tmp_path, max_restarts=1,
                  env={KILL_ENV: "7"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert "rank 1 exits at step 7" in r.stderr
    assert "resumed from" in r.stderr and "checkpoint-6.pt" in r.stderr
    comm = json.loads((out / "comm.json").read_text())
    assert comm["steps"] == 10 and comm["steps_this_run"] == 4 and comm["ranks_identical"]
    # exact resume (mid-block: local weights, optimiser and BMUF state restored): the uninterrupted run's weights
    ref = _RESULTS.get("bmuf")
    if ref is None:
        r2 = _torchrun(_nnet_args(toy, tmp_path / "ref", *extra), tmp_path)
        assert r2.returncode == 0, r2.stderr[-3000:]
        ref = json.loads((tmp_path / "ref" / "comm.json").read_text())
    assert comm["param_hash"] == ref["param_hash"] and comm["eval_param_hash"] == ref["eval_param_hash"]
    assert comm["payload_bytes"] == ref["payload_bytes"]  # counters survive the restart


def test_mismatched_config_is_refused_naming_the_rank(toy, tmp_path):
    out = tmp_path / "out"
    r = _torchrun(_nnet_args(toy, out, "--sync", "ddp"), tmp_path, env={RANK1_ARGS_ENV: "--sync bmuf"})
    assert r.returncode != 0
    assert "rank 1 differs from rank 0" in r.stderr and "sync_mode" in r.stderr, r.stderr[-3000:]
    assert not list(out.glob("*.pt"))


def test_pseudo_label_jobs_from_torchrun_ranks(toy, tmp_path):
    import torch

    from asrkit.nnet.checkpoint import save_checkpoint
    from asrkit.nnet.models import build_model
    from asrkit.nnet.presets import preset

    cfg = preset("teacher", "tiny", num_senones=NUM_SENONES)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "teacher.pt", {"model_config": cfg.to_dict(), "model": build_model(cfg).state_dict()})
    out = tmp_path / "pseudo"
    e = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    e.pop("WORLD_SIZE", None)
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m",
           "asrkit.bin.pseudo_label", "--model", str(tmp_path / "teacher.pt"), "--cuts",
           str(toy / "cuts_unsup.jsonl.gz"), "--cmvn", str(toy / "cmvn.npz"), "--out-dir", str(out), "--k", "5",
           "--shard-size", "3", "--no-progress", "--num-threads", "1"]
    r = subprocess.run(cmd, cwd=tmp_path, env=e, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "index.job1.json").exists() and (out / "index.job2.json").exists()
    index = json.loads((out / "index.json").read_text())
    assert index["num_shards"] == 3 and index["totals"]["utts"] == 8  # 8 cuts in shards of 3, both jobs merged


def test_simulated_workers_equal_torchrun(toy, tmp_path):
    """--simulate-workers 2 in one process gives the weights of 2 torchrun processes (the student's
    interleaved schedule, GTC with mean codes, sparsity warm-up and the sparse Adam; tiny preset: no dropout)."""
    import torch

    extra = ["--sync", "gtc", "--gtc-target-fraction", "0.05", "--gtc-warmup-steps", "3", "--max-steps", "6",
             "--gtc-sparse-adam", "true"]
    r = _torchrun(_student_args(toy, tmp_path / "real", *extra), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    e = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    e.pop("WORLD_SIZE", None)
    r = subprocess.run([sys.executable, __file__, *_student_args(toy, tmp_path / "sim", *extra,
                                                                 "--simulate-workers", "2")],
                       cwd=tmp_path, env=e, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "sync gtc over 2 simulated workers" in r.stderr
    real = torch.load(tmp_path / "real" / "checkpoint-6.pt", weights_only=False)
    sim = torch.load(tmp_path / "sim" / "checkpoint-6.pt", weights_only=False)
    assert real["step"] == sim["step"] == 6
    for ck in (real, sim):  # the trainer built asrkit.distributed.sparse_adam.SparseGradAdam
        assert all("sent_share" in st for st in ck["optimizer"]["state"].values())
    init = torch.load(tmp_path / "real" / "checkpoint-3.pt", weights_only=False)["model"]
    for k, v in real["model"].items():
        torch.testing.assert_close(sim["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)
    assert any(not torch.equal(init[k], v) for k, v in real["model"].items())
    res_real = real["dist"]["ranks"][1]["sync"]["gtc"]["residuals"]
    res_sim = sim["dist"]["ranks"][0]["sync"]["gtc"][1]["residuals"]  # worker 1's residuals
    assert res_real.keys() == res_sim.keys()
    for k in res_real:  # DDP lays a bucket out in the order gradients became ready: compare as multisets
        torch.testing.assert_close(res_sim[k].sort().values, res_real[k].sort().values, rtol=1e-4, atol=1e-5)
        assert res_real[k].abs().sum() > 0
