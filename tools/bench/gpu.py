#!/usr/bin/env python
"""Benchmark: GPU readiness. Training frames/s of the student and the teacher, and model FLOPs
utilisation (MFU) against the card's own measured matrix-multiply peak.

1. Peak: the best of ``--peak-repeats`` square matmuls of ``--peak-size`` in the training dtype
   (bfloat16 on CUDA), timed with CUDA events: 2 N^3 FLOPs each. This is what the card delivers here,
   not the datasheet figure.
2. Training: the paper models (``--preset paper``: 78 M BLSTM teacher, 24 M LSTM student; 3,000 senones,
   192 inputs) on random batches shaped like the recipe's (``--batch`` chunks of ``--chunk`` scored
   30 ms frames plus 20 frames of context each side for the teacher, 20 on the left for the student),
   forward + cross-entropy + backward + Adam under autocast, timed after ``--warmup`` steps.
   Model FLOPs per step: 6 x (weights) x (input frames computed) (forward 2, backward 4 per weight and
   frame: every LSTM and output weight is used once per frame and direction). MFU = model FLOP/s / peak.

Prints a table, plus hours of speech per hour of training (120,000 frames of 30 ms are one hour).
Without a GPU it says so and exits 0; ``--device cpu`` runs the same measurement on the CPU (for
checking the benchmark itself: use ``--preset tiny``).

    .venv/bin/python tools/bench/gpu.py                          # on a GPU machine
    .venv/bin/python tools/bench/gpu.py --device cpu --preset tiny --steps 3 --peak-size 256
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

FRAMES_PER_HOUR = 120000  # 30 ms frames


def no_gpu_reason() -> str:
    import torch

    if not torch.cuda.is_available():
        build = torch.version.cuda or "none (a CPU build)"
        return f"no GPU: torch {torch.__version__} sees no CUDA device (CUDA in this torch build: {build})"
    return ""


class Timer:
    """Wall time with CUDA events on a GPU (asynchronous kernels), perf_counter on the CPU."""

    def __init__(self, device):
        import torch

        self.cuda = device.type == "cuda"
        self.torch = torch

    def __enter__(self):
        if self.cuda:
            self.start, self.end = (self.torch.cuda.Event(enable_timing=True) for _ in range(2))
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.end.record()
            self.torch.cuda.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1000
        else:
            self.seconds = time.perf_counter() - self.t0


def matmul_peak(device, dtype, n: int, repeats: int) -> float:
    """The best FLOP/s of an n x n matmul in ``dtype``."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    inner = 10 if device.type == "cuda" else 2
    for _ in range(repeats):
        with Timer(device) as t:
            for _ in range(inner):
                a @ b
        best = max(best, 2 * n ** 3 * inner / t.seconds)
    return best


def weight_count(model) -> int:
    """Weights used once per frame and direction (biases excluded: they add no multiplies)."""
    return sum(p.numel() for name, p in model.named_parameters() if "bias" not in name)


def bench_training(role: str, preset_name: str, device, amp_dtype, batch: int, chunk: int, steps: int,
                   warmup: int, num_senones: int) -> dict:
    import torch
    import torch.nn.functional as F

    from asrkit.nnet.models import build_model
    from asrkit.nnet.presets import preset

    cfg = preset(role, preset_name, num_senones=num_senones)
    model = build_model(cfg).to(device).train()
    left, right = (20, 20) if role == "teacher" else (20, 0)
    frames_in = chunk + left + right
    x = torch.randn(batch, frames_in, cfg.input_dim, device=device)
    y = torch.randint(0, num_senones, (batch, chunk), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    use_amp = device.type == "cuda"

    def step():
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            logits, _ = model(x)
            logits = logits[:, left:left + chunk]
            loss = F.cross_entropy(logits.reshape(-1, num_senones).float(), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    with Timer(device) as t:
        for _ in range(steps):
            step()
    dirs = 2 if cfg.bidirectional else 1
    w = weight_count(model)
    # the output layer sees every computed frame; LSTM weights are per direction already in w
    flops = 6 * w * batch * frames_in * steps
    mem = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else float("nan")
    return {"role": role, "preset": preset_name, "params": model.num_parameters(), "directions": dirs,
            "scored_fps": batch * chunk * steps / t.seconds, "input_fps": batch * frames_in * steps / t.seconds,
            "model_flops": flops / t.seconds, "seconds": t.seconds, "peak_mem_gib": mem}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (to check the benchmark itself)")
    p.add_argument("--preset", default="paper", help="model sizes (asrkit.nnet.presets): paper | medium | small | tiny")
    p.add_argument("--roles", default="student,teacher")
    p.add_argument("--num-senones", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64, help="chunks per batch")
    p.add_argument("--chunk", type=int, default=200, help="scored frames per chunk")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"),
                   help="autocast dtype on CUDA and the peak's matmul dtype (CPU: float32)")
    p.add_argument("--peak-size", type=int, default=8192)
    p.add_argument("--peak-repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    a = p.parse_args(argv)

    import torch

    if a.device.startswith("cuda"):
        reason = no_gpu_reason()
        if reason:
            print(f"{reason}; nothing measured (tools/bench/gpu.py --device cpu checks the benchmark on the CPU)")
            return 0
    device = torch.device(a.device)
    if device.type == "cpu":
        torch.set_num_threads(a.threads)
        dtype = torch.float32
        card = f"CPU ({torch.get_num_threads()} thread(s))"
    else:
        dtype = getattr(torch, a.dtype)
        card = torch.cuda.get_device_name(device)
    peak = matmul_peak(device, dtype, a.peak_size, a.peak_repeats)
    print(f"device: {card}; torch {torch.__version__}; measured {str(dtype).replace('torch.', '')} matmul peak "
          f"{peak / 1e12:.2f} TFLOP/s ({a.peak_size}^3)")
    print(f"batches: {a.batch} chunks x {a.chunk} scored frames; {a.steps} timed steps after {a.warmup}")
    print()
    print("| role | preset | params | scored frames/s | input frames/s | model TFLOP/s | MFU | "
          "h of speech per h | peak GPU mem (GiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for role in [r for r in a.roles.split(",") if r]:
        r = bench_training(role, a.preset, device, dtype, a.batch, a.chunk, a.steps, a.warmup, a.num_senones)
        print(f"| {role} | {a.preset} | {r['params'] / 1e6:.1f} M | {r['scored_fps']:,.0f} | {r['input_fps']:,.0f} | "
              f"{r['model_flops'] / 1e12:.3f} | {100 * r['model_flops'] / peak:.1f}% | "
              f"{r['scored_fps'] * 3600 / FRAMES_PER_HOUR:,.1f} | {r['peak_mem_gib']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
