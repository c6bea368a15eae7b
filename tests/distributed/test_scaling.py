import math

import pytest

from asrkit.distributed.scaling import (ScalingParams, allgather_time, allreduce_time, comm_time, efficiency,
                                 max_workers, throughput)


def test_ddp_efficiency_hand_example():
    # 1e6 params x 4 B = 4 MB in one bucket, 8 Gb/s = 1e9 B/s, no latency, 4 ms compute.
    p = ScalingParams(compute_ms_per_batch=4.0, params=1e6, bandwidth_gbps=8.0, latency_us=0.0, bucket_mb=100)
    assert comm_time("ddp", 2, p) == pytest.approx(2 * 1 / 2 * 4e6 / 1e9)          # 4 ms
    assert efficiency("ddp", 2, p) == pytest.approx(0.5)
    assert efficiency("ddp", 4, p) == pytest.approx(4 / (4 + 6))                   # 2*3/4*4 ms = 6 ms
    assert throughput("ddp", 4, p) == pytest.approx(4 / 0.010)
    assert max_workers("ddp", p) == 2
    assert efficiency("ddp", 1, p) == 1.0


def test_collective_costs():
    assert allreduce_time(1e6, 1, 1e9, 1e-5) == 0.0
    assert allreduce_time(1e6, 4, 1e9, 1e-5) == pytest.approx(6e-5 + 1.5e-3)
    assert allgather_time(1e3, 5, 1e9, 1e-5) == pytest.approx(4e-5 + 4e-6)


def test_monotone_in_bandwidth_and_workers():
    base = dict(compute_ms_per_batch=100.0, params=24e6, gtc_ratio=1000.0)
    for mode in ("ddp", "gtc", "bmuf"):
        effs = [efficiency(mode, 16, ScalingParams(bandwidth_gbps=b, **base)) for b in (1, 2, 5, 10, 40, 100)]
        assert effs == sorted(effs) and effs[0] < effs[-1]
        ns = [max_workers(mode, ScalingParams(bandwidth_gbps=b, **base)) for b in (1, 10, 100)]
        assert ns == sorted(ns)
        p = ScalingParams(bandwidth_gbps=10, **base)
        e = [efficiency(mode, n, p) for n in (1, 2, 8, 64, 512)]
        assert e == sorted(e, reverse=True)


def test_gtc_grows_with_n_and_bmuf_amortised():
    p = ScalingParams(compute_ms_per_batch=100.0, params=24e6, gtc_ratio=1000.0, bandwidth_gbps=10.0,
                      latency_us=0.0, bucket_mb=1000)
    # all-gather: (N-1) x bytes per worker
    assert comm_time("gtc", 9, p) == pytest.approx(8 * (96e6 / 1000 + 8) / 1.25e9)
    assert comm_time("bmuf", 8, p) == pytest.approx(comm_time("ddp", 8, p) / 50)
    # gtc stops where (N-1) (96,000 + 8) B / 1.25e9 B/s = 100 ms; bmuf without latency never stops
    assert max_workers("gtc", p) == 1 + math.floor(0.1 * 1.25e9 / 96_008)
    assert max_workers("bmuf", p, cap=1 << 16) == 1 << 16


def test_invalid_params():
    with pytest.raises(ValueError):
        ScalingParams(compute_ms_per_batch=0)
    with pytest.raises(ValueError):
        ScalingParams(compute_ms_per_batch=1, sync_period=0)


def test_cli_writes_plot_and_markdown(tmp_path):
    from asrkit.bin.scaling_model import main

    out = tmp_path / "s.png"
    assert main(["--compute-ms-per-batch", "100", "--gtc-ratio", "1000", "--params", "24e6",
                 "--out", str(out), "--bandwidths", "1,10,100", "--max-workers", "512"]) == 0
    assert out.stat().st_size > 10_000
    md = (tmp_path / "s.md").read_text()
    assert "--compute-ms-per-batch 100" in md and "| 10 |" in md and "holds" in md
    assert not math.isnan(len(md))


def test_inputs_from_the_benchmark_json(tmp_path):
    """--bench takes compute time (ddp's step less its communication), R and the size from the bench."""
    import json

    from asrkit.bin.scaling_model import main
    from asrkit.distributed.scaling import bench_inputs

    res = [{"mode": "ddp", "steps": 4, "step_s": 0.5, "comm_seconds": 0.4, "nparams": 1000, "payload_bytes": 16000,
            "dense_bytes": 16000, "elements_sent": 0, "elements_total": 0},
           {"mode": "gtc:frac=0.01", "steps": 4, "step_s": 0.45, "comm_seconds": 0.1, "nparams": 1000,
            "payload_bytes": 200, "dense_bytes": 16000, "elements_sent": 40, "elements_total": 4000}]
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"setup": {"batch": 2, "frames": 50, "hidden": 8, "layers": 1, "world_size": 2,
                                           "bmuf_period": 3, "steps": 4}, "results": res}))
    got = bench_inputs(bench)
    assert got["compute_ms_per_batch"] == pytest.approx(400.0)  # ddp: 500 ms step - 100 ms communication
    assert got["gtc_ratio"] == pytest.approx(80.0) and got["params"] == 1000 and got["frames_per_batch"] == 100
    assert "R = 80.0" in got["note"] and "compute 400 ms" in got["note"]
    out = tmp_path / "m.png"
    assert main(["--bench", str(bench), "--out", str(out), "--bandwidths", "1,10", "--max-workers", "64"]) == 0
    md = (tmp_path / "m.md").read_text()
    assert "Measured by tools/bench/dist.py" in md and "400 ms per batch per worker" in md and "R = 80" in md
    assert main(["--bench", str(bench), "--params", "24e6", "--out", str(out), "--bandwidths", "1",
                 "--max-workers", "64"]) == 0  # a flag given wins over the bench
    assert "2.4e+07 parameters" in (tmp_path / "m.md").read_text()
    # with bmuf measured, its step less its communication (after the optimiser step, not overlapped)
    res.append({"mode": "bmuf", "steps": 4, "step_s": 0.48, "comm_seconds": 0.04, "nparams": 1000,
                "payload_bytes": 5000, "dense_bytes": 16000, "elements_sent": 0, "elements_total": 0})
    bench.write_text(json.dumps({"setup": json.loads(bench.read_text())["setup"], "results": res}))
    got = bench_inputs(bench)
    assert got["compute_ms_per_batch"] == pytest.approx(470.0) and "bmuf step 480 ms" in got["note"]
    with pytest.raises(SystemExit):
        main(["--bench", str(bench), "--bench-gtc", "gtc:frac=0.5", "--out", str(out)])
    with pytest.raises(SystemExit):
        main(["--out", str(out)])  # neither --bench nor --compute-ms-per-batch
