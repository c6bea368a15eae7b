"""Benchmark of the sync modes on CPU with 2 gloo processes: bytes per step, compression against dense
all-reduce, and step time, on the article's student shape (LSTM 5 x 768, 192 inputs, 3000 outputs, 24.2 M
parameters).

  .venv/bin/python tools/bench/dist.py                       # ~2-3 minutes on 2 cores
  .venv/bin/python tools/bench/dist.py --steps 6 --hidden 256  # quick look

Each process uses one thread; batches are small (--batch x --frames) so that the run stays short. Counts
are taken over the timed steps only (after --warmup steps, so GTC's first dense iteration is excluded).
Byte conventions are those of asrkit.distributed.accounting (payload = bytes a worker contributes; wire = ring
algorithm bytes put on the network by one worker).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402


class Student(torch.nn.Module):
    def __init__(self, idim=192, hidden=768, layers=5, odim=3000):
        super().__init__()
        self.lstm = torch.nn.LSTM(idim, hidden, layers, batch_first=True)
        self.out = torch.nn.Linear(hidden, odim)

    def forward(self, x):
        return self.out(self.lstm(x)[0])


def _parse_mode(spec: str):
    """ddp | ma | bmuf | gtc:frac=0.001 | gtc:tau=0.01"""
    from asrkit.distributed.sync import SyncConfig

    name, _, opt = spec.partition(":")
    kw = {}
    if opt:
        k, v = opt.split("=")
        kw = {"frac": {"gtc_target_fraction": float(v)}, "tau": {"gtc_threshold": float(v)}}[k]
    return name, kw, SyncConfig


def worker(rank: int, world: int, a: argparse.Namespace, out: str) -> None:
    import torch.distributed as dist

    from asrkit.distributed.sync import Synchronizer

    results = []
    for spec in a.modes.split(","):
        name, kw, SyncConfig = _parse_mode(spec)
        cfg = SyncConfig(mode=name, sync_period=a.bmuf_period, **kw)
        torch.manual_seed(0)
        model = Student(hidden=a.hidden, layers=a.layers)
        nparams = sum(p.numel() for p in model.parameters())
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        sync = Synchronizer(cfg, model, opt)
        g = torch.Generator().manual_seed(rank)
        x = torch.randn(a.batch, a.frames, 192, generator=g)
        y = torch.randint(0, 3000, (a.batch, a.frames), generator=g)
        times, before = [], None
        for step in range(a.warmup + a.steps):
            if step == a.warmup:
                before = sync.accounting.summary()
            dist.barrier()
            t0 = time.perf_counter()
            logits = sync.model(x)
            torch.nn.functional.cross_entropy(logits.reshape(-1, 3000), y.reshape(-1)).backward()
            sync.before_optimizer_step(step)
            opt.step()
            sync.after_optimizer_step(step)
            opt.zero_grad()
            times.append(time.perf_counter() - t0)
        after = sync.accounting.summary()
        d = {k: after[k] - before[k] for k in ("steps", "payload_bytes", "wire_bytes", "dense_bytes", "comm_seconds",
                                                   "elements_sent", "elements_total")}
        d.update(mode=spec, nparams=nparams, step_s=sum(times[a.warmup:]) / a.steps,
                 fraction_sent=d["elements_sent"] / d["elements_total"] if name == "gtc" else None)
        results.append(d)
        del sync, model, opt
    if rank == 0:
        Path(out).write_text(json.dumps(results))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", default="ddp,gtc:frac=0.001,gtc:frac=0.01,gtc:tau=0.0005,bmuf,ma")
    p.add_argument("--steps", type=int, default=6, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--frames", type=int, default=50)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--bmuf-period", type=int, default=3, help="tau for bmuf/ma in this run (syncs must be timed)")
    p.add_argument("--world-size", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the measurements here (input of "
                                                "asrkit.bin.scaling_model --bench)")
    a = p.parse_args()
    from asrkit.distributed.launch import spawn_local

    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "res.json")
        spawn_local(worker, a.world_size, args=(a, out))
        res = json.loads(Path(out).read_text())
    n = res[0]["nparams"]
    print(f"# {a.world_size} gloo processes x 1 thread, LSTM {a.layers}x{a.hidden} + Linear 3000: {n:,} params "
          f"({4 * n / 1e6:.1f} MB fp32); batch {a.batch}x{a.frames} frames; {a.steps} timed steps per mode; "
          f"bmuf/ma tau={a.bmuf_period}")
    print(f"{'mode':18} {'payload B/step':>15} {'wire B/step':>13} {'ratio vs ddp':>12} {'sent frac':>9} "
          f"{'step ms':>9} {'comm ms/step':>12}")
    ddp_step = next((r["step_s"] for r in res if r["mode"] == "ddp"), None)
    for r in res:
        s = r["steps"]
        ratio = r["dense_bytes"] / r["payload_bytes"] if r["payload_bytes"] else float("inf")
        frac = f"{r['fraction_sent']:.4f}" if r["fraction_sent"] is not None else "-"
        print(f"{r['mode']:18} {r['payload_bytes'] / s:15,.0f} {r['wire_bytes'] / s:13,.0f} {ratio:12.1f} {frac:>9} "
              f"{1e3 * r['step_s']:9.0f} {1e3 * r['comm_seconds'] / s:12.1f}")
    print(f"{'bmuf tau=50 (calc)':18} {4 * n / 50:15,.0f} {4 * n / 50 * 2 * (a.world_size - 1) / a.world_size:13,.0f} "
          f"{50.0:12.1f} {'-':>9} {'-':>9} {'-':>12}")
    if ddp_step:
        print("step time relative to ddp: " + ", ".join(f"{r['mode']} {r['step_s'] / ddp_step:.2f}" for r in res))
    if a.json:
        from asrkit.utils.atomic import atomic_write_text

        setup = {k: getattr(a, k) for k in ("batch", "frames", "hidden", "layers", "world_size", "bmuf_period", "steps")}
        atomic_write_text(a.json, json.dumps({"setup": setup, "results": res}, indent=1) + "\n")
    print(f"total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
