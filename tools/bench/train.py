#!/usr/bin/env python
"""Benchmark: the whole training loop (loader + step) against the bare model step, and inference.

Makes synthetic labelled cuts (asrkit.testing.cuts: 64-dim lilcom fbank + int16 senone targets, as
stage 6 stores them) in a temporary folder, then, in one process, interleaved over ``--rounds``:

* ``bare``: the model's forward + cross-entropy + backward + Adam step on the same batches, pre-built
  in memory (no loader, no logging, no clipping);
* ``loop w=K``: ``asrkit.nnet.train.Trainer.run`` (DataLoader with K workers reading and collating the
  cuts, CMVN + stacking, the step with clipping and non-finite checks, tqdm off, TensorBoard on,
  checkpoints off) over the same batches in the same order.

Frames are scored 30 ms frames (chunk context excluded), timed from the end of warm-up step
``--warmup`` to step ``--steps``; the best round of each is kept; ratio = loop / bare (goal >= 0.9).
Inference: frames/s of ``asrkit.nnet.infer.log_posteriors`` over whole utterances and, for the
student, streaming in chunks of 32 frames.

    .venv/bin/python tools/bench/train.py [--role student] [--preset small] [--steps 25] [--workers 0,1]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", default="student", choices=("student", "teacher"))
    p.add_argument("--preset", default="small")
    p.add_argument("--num-senones", type=int, default=3000)
    p.add_argument("--num-cuts", type=int, default=300)
    p.add_argument("--max-frames", type=int, default=3200, help="padded frames per batch (16 x 200)")
    p.add_argument("--chunk-size", type=int, default=200)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--workers", default="0,1")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default; on a shared 2-core box 2 threads ran 10x slower)")
    p.add_argument("--infer-cuts", type=int, default=20)
    a = p.parse_args(argv)

    import torch

    from asrkit.features.reader import FeatureReader
    from asrkit.nnet.infer import log_posteriors
    from asrkit.nnet.losses import compute_loss
    from asrkit.nnet.models import build_model
    from asrkit.testing.cuts import make_toy_cmvn, write_toy_cuts
    from asrkit.nnet.train import TrainConfig, Trainer, model_config_of

    if a.threads:
        torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        cuts = write_toy_cuts(tmp / "data", num_cuts=a.num_cuts, num_senones=a.num_senones,
                              frames_range=(200, 900), seed=0)
        reader = FeatureReader(make_toy_cmvn(cuts))
        workers = [int(w) for w in a.workers.split(",") if w != ""]
        cfg = TrainConfig(role=a.role, preset=a.preset, num_senones=a.num_senones, chunk_size=a.chunk_size,
                          max_frames=a.max_frames, num_epochs=1, max_steps=a.steps, checkpoint_every=0,
                          progress=False, tensorboard=True, log_every=5, seed=0)
        mcfg = model_config_of(cfg)
        n_params = build_model(mcfg).num_parameters()

        # the batches the loop will see (epoch 0, in order), pre-built for the bare measurement
        probe = Trainer(cfg, cuts, None, reader, tmp / "probe", resume=False)
        order = probe.sampler.batches(0)[: a.steps]
        if len(order) < a.steps:
            raise SystemExit(f"one epoch has only {len(order)} batches: raise --num-cuts or lower --steps")
        scored = [sum(probe.train_set.segments[i].end - probe.train_set.segments[i].start for i in b) for b in order]
        batches = [probe.train_set[b] for b in order]
        timed_frames = sum(scored[a.warmup:])
        del probe

        def bare() -> float:
            torch.manual_seed(0)
            model = build_model(mcfg)
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            t0 = None
            for i, b in enumerate(batches):
                if i == a.warmup:
                    t0 = time.perf_counter()
                logits, _ = model(b["features"], b["lengths"])
                loss = compute_loss(logits, b).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return timed_frames / (time.perf_counter() - t0)

        def loop(nw: int, r: int) -> float:
            marks = {}

            def hook(step):
                if step in (a.warmup, a.steps):
                    marks[step] = time.perf_counter()

            c = TrainConfig(**{**cfg.to_dict(), "num_workers": nw})
            tr = Trainer(c, cuts, None, reader, tmp / f"loop_{nw}_{r}", step_hook=hook, resume=False)
            tr.run()
            return timed_frames / (marks[a.steps] - marks[a.warmup])

        res = {"bare": []}
        for w in workers:
            res[f"loop w={w}"] = []
        for r in range(a.rounds):
            res["bare"].append(bare())
            for w in workers:
                res[f"loop w={w}"].append(loop(w, r))

        # inference
        model = build_model(mcfg).eval()
        inf_cuts = list(cuts)[: a.infer_cuts]
        feats = [reader(c) for c in inf_cuts]
        frames = sum(len(f) for f in feats)
        inf = {}
        modes = [("whole utterance", False)] + ([("streaming chunk 32", True)] if a.role == "student" else [])
        for name, streaming in modes:
            log_posteriors(model, feats[0], streaming=streaming)
            t0 = time.perf_counter()
            for f in feats:
                log_posteriors(model, f, streaming=streaming, chunk=32)
            inf[name] = frames / (time.perf_counter() - t0)

        bare_best = max(res["bare"])
        print(f"\n{a.role} preset {a.preset}: {n_params / 1e6:.2f} M parameters, {a.num_senones} senones, "
              f"batches of <= {a.max_frames} padded frames, chunk {a.chunk_size}, torch threads "
              f"{torch.get_num_threads()}, {a.steps - a.warmup} timed steps ({timed_frames} scored frames), "
              f"best of {a.rounds} rounds")
        print(f"{'what':<28}{'frames/s (best)':>16}{'all rounds':>28}{'ratio to bare':>15}")
        for k, v in res.items():
            rounds = ", ".join(f"{x:.0f}" for x in v)
            print(f"{'train ' + k:<28}{max(v):>16.0f}{rounds:>28}{max(v) / bare_best:>15.3f}")
        for k, v in inf.items():
            print(f"{'inference ' + k:<28}{v:>16.0f}{'':>28}{'':>15}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
