"""Accuracy of the sync modes with N simulated workers on toy data (asrkit.distributed.simulate), as a table.

  .venv/bin/python tools/bench/sim_workers.py --workers 2 --runs ddp gtc_tau gtc_mean gtc_mean_warmup
  .venv/bin/python tools/bench/sim_workers.py --workers 1 4 16 64 --runs ddp gtc_mean bmuf

Each run trains the "small" student (3 x 256 LSTM, 192 stacked inputs) with the trainer of the recipes
(``asrkit.nnet.train.train``, ``--simulate-workers N``) for --epochs passes over toy cuts
(asrkit.testing.cuts: a per-senone prototype plus strong noise), so that every N sees the same data and
each worker keeps the one-process batch size: N workers make 1/N of the updates. Printed per run: updates,
best dev frame accuracy, payload compression against dense all-reduce, wall seconds. One thread; run it
nice'd on a shared machine. --json appends one JSON line per run.

  .venv/bin/python tools/bench/sim_workers.py --from-exp egs/synth/s5/exp

prints the same wall-time table for a recipe's stage 15 runs (exp/dist_<mode> and exp/dist_sim_<mode>_n<N>:
their comm.json, history.jsonl and decode_<set>/best_wer), with each run's WER.
"""
import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SGD = dict(optimizer="sgd", lr=1.0, momentum=0.9)  # the student's SGD setting of README's "Limits"
RUNS = {  # name: (sync options, training options over the defaults: Adam at lr 0.002)
    "ddp": (dict(mode="ddp"), {}),
    "gtc_tau": (dict(mode="gtc", gtc_coding="tau"), {}),
    "gtc_mean": (dict(mode="gtc", gtc_coding="mean"), {}),
    "gtc_mean_warmup": (dict(mode="gtc", gtc_coding="mean", gtc_warmup_steps=100, gtc_warmup_fraction=0.05), {}),
    # Adam's second moment corrected for the sparse averaged gradient (asrkit.distributed.sparse_adam)
    "gtc_mean_warmup_sa": (dict(mode="gtc", gtc_coding="mean", gtc_warmup_steps=100, gtc_warmup_fraction=0.05,
                                gtc_sparse_adam=True), {}),
    "gtc_log_warmup_sa": (dict(mode="gtc", gtc_coding="log", gtc_warmup_steps=100, gtc_warmup_fraction=0.05,
                               gtc_sparse_adam=True), {}),
    "bmuf": (dict(mode="bmuf", sync_period=50), {}),
    "ma": (dict(mode="ma", sync_period=50), {}),
    "ddp_sgd": (dict(mode="ddp"), SGD),
    "gtc_tau_sgd": (dict(mode="gtc", gtc_coding="tau"), SGD),
    "gtc_mean_sgd": (dict(mode="gtc", gtc_coding="mean"), SGD),
    # DGC: momentum correction and factor masking in GTC, so the optimiser has none
    "gtc_mean_dgc": (dict(mode="gtc", gtc_coding="mean", gtc_momentum=0.9), dict(SGD, momentum=0.0)),
    "gtc_mean_dgc_clip": (dict(mode="gtc", gtc_coding="mean", gtc_momentum=0.9, gtc_local_clip=5.0),
                          dict(SGD, momentum=0.0)),
    "bmuf_sgd": (dict(mode="bmuf", sync_period=50), SGD),
    "gtc_mean_tensor": (dict(mode="gtc", gtc_coding="mean", gtc_per_tensor=True), {}),
    "gtc_tau_tensor": (dict(mode="gtc", gtc_coding="tau", gtc_per_tensor=True), {}),
    "gtc_mean_tensor_sgd": (dict(mode="gtc", gtc_coding="mean", gtc_per_tensor=True), SGD),
}


def wall_hours(row: dict, bandwidth: float, a) -> float:
    """Hours the run's data (updates x workers batches) takes at the scaling model's throughput for its
    mode and N (asrkit.distributed.scaling; ma as bmuf; GTC at the run's measured compression)."""
    from asrkit.distributed.scaling import ScalingParams, throughput

    mode = {"ma": "bmuf"}.get(row["sync"]["mode"], row["sync"]["mode"])
    p = ScalingParams(compute_ms_per_batch=a.compute_ms, params=a.model_params,
                      gtc_ratio=max(1.0, row["compression"] or 1.0), bandwidth_gbps=bandwidth,
                      sync_period=row["sync"].get("sync_period", 50))
    return row["updates"] * row["workers"] / throughput(mode, row["workers"], p) / 3600


def wall_table(rows, a) -> list:
    sets = sorted({k for r in rows for k in r.get("wer", {})}, key=lambda x: (x.startswith("dev"), x))
    head = ("| run | workers | updates | compression | best dev frame acc | "
            + "".join(f"WER {x} | " for x in sets)
            + " | ".join(f"wall h at {b:g} Gb/s | acc per h at {b:g} Gb/s" for b in a.bandwidths) + " |")
    out = [f"Scaling model: {a.compute_ms:g} ms per batch, {a.model_params:g} parameters, the run's data "
           "(updates x workers batches).", "", head,
           "|---|---|---|---|---|" + "---|" * len(sets) + "---|---|" * len(a.bandwidths)]
    for r in sorted(rows, key=lambda r: r["workers"]):  # stable: the runs' order within each N
        cells = [f"{r['wer'][x]:.2f}" if x in r.get("wer", {}) else "-" for x in sets]
        for b in a.bandwidths:
            h = wall_hours(r, b, a)
            cells += [f"{h:.3g}", f"{r['best_dev_acc'] / h:.3g}"]
        comp = f"x{r['compression']:.3g}" if r.get("compression") else "-"
        out.append(f"| {r['run']} | {r['workers']} | {r['updates']} | {comp} | {r['best_dev_acc']:.4f} | "
                   + " | ".join(cells) + " |")
    return out


def exp_rows(exp: Path) -> list:
    """Rows of the stage 15 runs under a recipe's exp/ (dist_<mode> and dist_sim_<mode>_n<N>), from the
    report's reader (asrkit.report.collect_dist) plus each run's best dev frame accuracy and block length."""
    from asrkit.report import collect_dist

    sets = sorted({p.name[len("decode_"):] for p in exp.glob("dist_*/decode_*") if p.is_dir()})
    rows = []
    for r in collect_dist(exp, sets):
        hist = [json.loads(x) for x in (exp / r.system / "history.jsonl").read_text().splitlines() if x.strip()]
        accs = [h["dev_acc"] for h in hist if h.get("dev_acc") is not None]
        sync = json.loads((exp / r.system / "comm.json").read_text()).get("sync_config", {"mode": r.mode})
        rows.append({"run": r.system, "workers": r.world_size, "updates": r.steps,
                     "best_dev_acc": max(accs) if accs else 0.0, "compression": r.compression, "sync": sync,
                     "wer": {k: w.wer for k, w in r.wers.items()}})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[2])
    p.add_argument("--runs", nargs="+", default=["ddp", "gtc_tau", "gtc_mean"], choices=sorted(RUNS))
    p.add_argument("--fraction", type=float, default=0.005, help="GTC target fraction")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr-warmup", type=int, default=50, help="LR warm-up updates (few: many workers make few updates)")
    p.add_argument("--preset", default="small", help="student preset (tiny: 2 x 32, for many runs)")
    p.add_argument("--max-frames", type=int, default=1000, help="padded input frames per batch (per worker)")
    p.add_argument("--cuts", type=int, default=240)
    p.add_argument("--senones", type=int, default=120)
    p.add_argument("--noise", type=float, default=4.0)
    p.add_argument("--data", default=None, help="toy data dir (made once; default: a temporary dir)")
    p.add_argument("--json", default=None, help="append one JSON line per run here")
    p.add_argument("--table-from", default=None, help="only print the wall-time table of this --json file")
    p.add_argument("--from-exp", default=None, help="only print the wall-time table of a recipe's stage 15 runs")
    p.add_argument("--compute-ms", type=float, default=100.0,
                   help="scaling model: compute time per batch (docs/scaling.md's GPU assumption)")
    p.add_argument("--model-params", type=float, default=24e6, help="scaling model: parameters (the paper's student)")
    p.add_argument("--bandwidths", type=float, nargs="+", default=[1.0, 10.0], help="scaling model: Gb/s")
    a = p.parse_args(argv)
    if a.from_exp:
        print("\n".join(wall_table(exp_rows(Path(a.from_exp)), a)))
        return 0
    if a.table_from:
        rows = [json.loads(line) for line in Path(a.table_from).read_text().splitlines() if line.strip()]
        print("\n".join(wall_table(rows, a)))
        return 0
    logging.basicConfig(level=logging.WARNING)

    import torch

    from asrkit.distributed.sync import SyncConfig
    from asrkit.testing.cuts import make_toy_cmvn, write_toy_cuts
    from asrkit.nnet.train import TrainConfig, train

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="sim_workers_"))
    data = Path(a.data) if a.data else tmp / "data"
    if not (data / "dev" / "cuts.jsonl.gz").exists():
        tr = write_toy_cuts(data / "tr", num_cuts=a.cuts, num_senones=a.senones, seed=1, noise=a.noise,
                            frames_range=(150, 300))
        write_toy_cuts(data / "dev", num_cuts=max(8, a.cuts // 6), num_senones=a.senones, seed=2, noise=a.noise,
                       frames_range=(150, 300))
        make_toy_cmvn(tr).save(data / "cmvn.npz")
    print(f"| run | workers | updates | best dev frame acc | compression | skipped | seconds |")
    print("|---|---|---|---|---|---|---|")
    try:
        for n in a.workers:
            for name in a.runs:
                kw, train_kw = dict(RUNS[name][0]), {"lr": 0.002, **RUNS[name][1]}
                if kw["mode"] == "gtc":
                    kw["gtc_target_fraction"] = a.fraction
                cfg = TrainConfig(role="student", preset=a.preset, num_senones=a.senones, num_epochs=a.epochs,
                                  max_frames=a.max_frames, warmup_steps=a.lr_warmup, num_workers=0, num_threads=1,
                                  progress=False, tensorboard=False, checkpoint_every=0, device="cpu", **train_kw)
                out = tmp / f"{name}_n{n}"
                t0 = time.perf_counter()
                res = train(cfg, data / "tr" / "cuts.jsonl.gz", data / "dev" / "cuts.jsonl.gz", data / "cmvn.npz",
                            out, sync=SyncConfig(simulate_workers=n, **kw))
                comm = json.loads((out / "comm.json").read_text())
                row = {"run": name, "workers": n, "updates": res.step, "best_dev_acc": res.best_dev_acc,
                       "compression": comm["compression_ratio"], "skipped": comm["skipped_steps"],
                       "dev_acc_per_epoch": [h.get("dev_acc") for h in res.history],
                       "seconds": time.perf_counter() - t0, "sync": kw, "train": train_kw, "epochs": a.epochs, "preset": a.preset,
                       "cuts": a.cuts, "max_frames": a.max_frames, "lr_warmup": a.lr_warmup,
                       "payload_bytes_mean_worker": comm.get("payload_bytes_mean_worker"),
                       "dense_bytes": comm["dense_bytes"], "num_parameters": comm["num_parameters"]}
                comp = f"x{row['compression']:.1f}" if row["compression"] else "-"
                print(f"| {name} | {n} | {res.step} | {res.best_dev_acc:.4f} | {comp} | {row['skipped']} | "
                      f"{row['seconds']:.0f} |", flush=True)
                if a.json:
                    with open(a.json, "a") as f:
                        f.write(json.dumps(row) + "\n")
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
