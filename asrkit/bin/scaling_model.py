"""Analytical scaling model of ddp / gtc / bmuf throughput against the number of workers.

  python -m asrkit.bin.scaling_model --compute-ms-per-batch 100 --gtc-ratio 1000 --params 24e6 \\
      --out docs/scaling.png
  python tools/bench/dist.py --json bench_dist.json
  python -m asrkit.bin.scaling_model --bench bench_dist.json --out docs/scaling_cpu.png   # measured inputs

Writes the plot (PNG) and, beside it, a markdown file (default: the PNG's name with .md) with the
assumptions, the bandwidth sweep and the grid that tests the article's claim (BMUF scales to about four
times as many workers as GTC). Prints the bandwidth table.
"""
import argparse
import shlex
import sys
from pathlib import Path

from asrkit.utils.logging import setup_logging


def _floats(s: str):
    return [float(x) for x in s.split(",") if x]


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", default=None,
                   help="JSON of tools/bench/dist.py --json: compute time per batch (bmuf's step less its "
                        "communication; see asrkit.distributed.scaling.bench_inputs), GTC ratio (of --bench-gtc) and "
                        "parameters come from it")
    p.add_argument("--bench-gtc", default="gtc:frac=0.01", help="the bench's GTC mode whose ratio is used")
    p.add_argument("--compute-ms-per-batch", type=float, default=None, help="required without --bench")
    p.add_argument("--gtc-ratio", type=float, default=None, help="GTC payload compression against dense "
                                                                 "(default 1000, or the bench's)")
    p.add_argument("--params", type=float, default=None, help="default 24e6, or the bench's")
    p.add_argument("--bytes-per-param", type=int, default=4)
    p.add_argument("--latency-us", type=float, default=25.0)
    p.add_argument("--sync-period", type=int, default=50, help="BMUF tau")
    p.add_argument("--bucket-mb", type=float, default=25.0)
    p.add_argument("--decode-ns-per-code", type=float, default=0.0)
    p.add_argument("--overlap", type=float, default=0.0, help="fraction of ddp/gtc comm hidden by compute")
    p.add_argument("--frames-per-batch", type=float, default=None, help="report frames/s instead of batches/s")
    p.add_argument("--bandwidths", type=_floats, default=[1, 2, 5, 10, 25, 40, 100], help="Gb/s, comma-separated")
    p.add_argument("--efficiency", type=float, default=0.5, help="scaling stops below this efficiency")
    p.add_argument("--max-workers", type=int, default=4096)
    p.add_argument("--claim-factor", type=float, default=4.0)
    p.add_argument("--grid-compute-ms", type=_floats, default=None,
                   help="claim grid compute times (default: X/4, X, 4X)")
    p.add_argument("--grid-ratios", type=_floats, default=None, help="claim grid GTC ratios (default R/10, R, 10R)")
    p.add_argument("--grid-bandwidths", type=_floats, default=[1, 10, 100])
    p.add_argument("--out", default="docs/scaling.png")
    p.add_argument("--md", default=None, help="markdown output (default: --out with .md)")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging()
    from asrkit.distributed.scaling import ScalingParams, bench_inputs, claim_grid, markdown, plot, sweep

    note = ""
    if a.bench:
        try:
            measured = bench_inputs(a.bench, a.bench_gtc)
        except (OSError, ValueError, KeyError) as e:
            p.error(f"--bench {a.bench}: {e}")
        for k in ("compute_ms_per_batch", "gtc_ratio", "params", "frames_per_batch"):
            if getattr(a, k) is None:
                setattr(a, k, measured[k])
        note = measured["note"]
    if a.compute_ms_per_batch is None:
        p.error("--compute-ms-per-batch is required without --bench")
    a.gtc_ratio = 1000.0 if a.gtc_ratio is None else a.gtc_ratio
    a.params = 24e6 if a.params is None else a.params

    params = ScalingParams(a.compute_ms_per_batch, a.params, a.bytes_per_param, a.gtc_ratio, 10.0, a.latency_us,
                           a.sync_period, a.bucket_mb, a.decode_ns_per_code, a.overlap, a.frames_per_batch)
    rows = sweep(params, a.bandwidths, a.efficiency, a.max_workers)
    x, r = a.compute_ms_per_batch, a.gtc_ratio
    grid = claim_grid(params, a.grid_compute_ms or [x / 4, x, 4 * x], a.grid_ratios or [r / 10, r, 10 * r],
                      a.grid_bandwidths, a.efficiency, a.max_workers)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(params, a.bandwidths, str(out), a.efficiency, a.max_workers)
    md = Path(a.md) if a.md else out.with_suffix(".md")
    command = "python -m asrkit.bin.scaling_model " + " ".join(shlex.quote(s) for s in
                                                              (sys.argv[1:] if argv is None else argv))
    md.write_text(markdown(params, rows, grid, command, out.name, a.efficiency, a.max_workers, a.claim_factor,
                           inputs_note=note))
    cap = a.max_workers
    sys.stdout.write("bandwidth_gbps  maxN_ddp  maxN_gtc  maxN_bmuf  bmuf/gtc\n")
    for row in rows:
        f = lambda n: f">={cap}" if n >= cap else str(n)  # noqa: E731
        sys.stdout.write(f"{row.bandwidth_gbps:14g}  {f(row.n_ddp):>8}  {f(row.n_gtc):>8}  {f(row.n_bmuf):>9}  "
                         f"{row.ratio:8.1f}\n")
    held = sum(r.holds(a.claim_factor) for r in grid)
    sys.stdout.write(f"claim (bmuf >= {a.claim_factor:g}x gtc) holds in {held}/{len(grid)} grid settings; "
                     f"wrote {out} and {md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
