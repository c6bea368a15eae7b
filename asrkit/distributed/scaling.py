"""An analytical (alpha-beta) model of data-parallel throughput for ddp, gtc and bmuf.

Per worker and optimiser step (one batch), with N workers, P parameters of b bytes (B = P b), bandwidth
beta (bytes/s per link), per-message latency alpha, and k = ceil(B / bucket) DDP buckets:

* ring all-reduce of M bytes:   T_ar(M) = 2 (N-1) alpha + 2 (N-1)/N * M / beta
* ring all-gather, m bytes each: T_ag(m) = (N-1) alpha + (N-1) m / beta     (grows with N)
* ddp:  T_comm = k T_ar(B / k)
* gtc:  T_comm = k [T_ag(8) + T_ag(B / (R k))] + N (P / R) t_dec   (header and padded codes per bucket;
        R = payload compression ratio against dense, so every worker sends B / R bytes of codes;
        t_dec = decode time per received code)
* bmuf: T_comm = T_ar(B) / tau                                     (one parameter all-reduce per block)

step time = t_compute + (1 - overlap) T_comm (overlap applies to ddp/gtc, whose buckets can overlap the
backward pass; bmuf's sync is blocking), throughput = N / step time batches/s (x frames per batch),
efficiency = t_compute / step time = speed-up / N. A mode "stops scaling" at the largest N whose
efficiency is still >= the threshold (default 50%); every cost above is non-decreasing in N, so that N is
found by bisection up to a cap. N = 1 has no communication.

Not modelled: convergence per sample (BMUF with large N needs more data to reach the same accuracy;
GTC at a given ratio matches dense training, Strom 2015), stragglers, contention between several
processes sharing a node's network card, hierarchical (intra-node NVLink) reductions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

MODES = ("ddp", "gtc", "bmuf")
HEADER_BYTES = 8


@dataclass(frozen=True)
class ScalingParams:
    compute_ms_per_batch: float
    params: float = 24e6
    bytes_per_param: int = 4
    gtc_ratio: float = 1000.0
    bandwidth_gbps: float = 10.0
    latency_us: float = 25.0
    sync_period: int = 50
    bucket_mb: float = 25.0
    decode_ns_per_code: float = 0.0
    overlap: float = 0.0
    frames_per_batch: Optional[float] = None

    def __post_init__(self):
        if not self.compute_ms_per_batch > 0:
            raise ValueError(f"compute time per batch must be > 0, got {self.compute_ms_per_batch}")
        if not self.gtc_ratio >= 1:
            raise ValueError(f"GTC compression ratio must be >= 1, got {self.gtc_ratio}")
        if not self.bandwidth_gbps > 0 or self.latency_us < 0 or self.params <= 0:
            raise ValueError("bandwidth and parameters must be > 0 and latency >= 0")
        if self.sync_period <= 0:
            raise ValueError(f"BMUF sync period must be > 0, got {self.sync_period}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")

    @property
    def beta(self) -> float:  # bytes per second
        return self.bandwidth_gbps * 1e9 / 8

    @property
    def alpha(self) -> float:
        return self.latency_us * 1e-6

    @property
    def model_bytes(self) -> float:
        return self.params * self.bytes_per_param

    @property
    def buckets(self) -> int:
        return max(1, math.ceil(self.model_bytes / (self.bucket_mb * 1024 * 1024)))


def allreduce_time(nbytes: float, n: int, beta: float, alpha: float) -> float:
    return 0.0 if n <= 1 else 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / beta


def allgather_time(nbytes_per_worker: float, n: int, beta: float, alpha: float) -> float:
    return 0.0 if n <= 1 else (n - 1) * alpha + (n - 1) * nbytes_per_worker / beta


def comm_time(mode: str, n: int, p: ScalingParams) -> float:
    """Seconds of communication per step and worker."""
    if n <= 1:
        return 0.0
    B, k = p.model_bytes, p.buckets
    if mode == "ddp":
        return k * allreduce_time(B / k, n, p.beta, p.alpha)
    if mode == "gtc":
        codes = p.params / p.gtc_ratio
        return (k * (allgather_time(HEADER_BYTES, n, p.beta, p.alpha)
                     + allgather_time(B / p.gtc_ratio / k, n, p.beta, p.alpha))
                + n * codes * p.decode_ns_per_code * 1e-9)
    if mode == "bmuf":
        return allreduce_time(B, n, p.beta, p.alpha) / p.sync_period
    raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")


def step_time(mode: str, n: int, p: ScalingParams) -> float:
    c = comm_time(mode, n, p)
    if mode in ("ddp", "gtc"):
        c *= 1 - p.overlap
    return p.compute_ms_per_batch * 1e-3 + c


def efficiency(mode: str, n: int, p: ScalingParams) -> float:
    return p.compute_ms_per_batch * 1e-3 / step_time(mode, n, p)


def throughput(mode: str, n: int, p: ScalingParams) -> float:
    """Batches/s over all workers (frames/s when frames_per_batch is set)."""
    t = n / step_time(mode, n, p)
    return t * p.frames_per_batch if p.frames_per_batch else t


def max_workers(mode: str, p: ScalingParams, threshold: float = 0.5, cap: int = 4096) -> int:
    """Largest N <= cap with efficiency >= threshold (1 when even 2 workers fall below it)."""
    if efficiency(mode, cap, p) >= threshold:
        return cap
    lo, hi = 1, cap  # eff(lo) >= threshold > eff(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if efficiency(mode, mid, p) >= threshold:
            lo = mid
        else:
            hi = mid
    return lo


def bandwidth_for_workers(mode: str, p: ScalingParams, n_target: int, threshold: float = 0.5,
                          lo: float = 1e-3, hi: float = 1e4) -> Optional[float]:
    """Smallest bandwidth (Gb/s) at which ``mode`` still scales to ``n_target`` workers (None: not in [lo, hi])."""
    ok = lambda b: efficiency(mode, n_target, replace(p, bandwidth_gbps=b)) >= threshold  # noqa: E731
    if not ok(hi):
        return None
    if ok(lo):
        return lo
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


@dataclass
class ClaimRow:
    compute_ms: float
    gtc_ratio: float
    bandwidth_gbps: float
    n_ddp: int
    n_gtc: int
    n_bmuf: int

    @property
    def ratio(self) -> float:
        return self.n_bmuf / self.n_gtc

    def holds(self, factor: float = 4.0) -> bool:
        return self.ratio >= factor


def sweep(p: ScalingParams, bandwidths: Sequence[float], threshold: float = 0.5, cap: int = 4096) -> List[ClaimRow]:
    rows = []
    for bw in bandwidths:
        q = replace(p, bandwidth_gbps=bw)
        rows.append(ClaimRow(p.compute_ms_per_batch, p.gtc_ratio, bw,
                             *(max_workers(m, q, threshold, cap) for m in MODES)))
    return rows


def claim_grid(p: ScalingParams, compute_ms: Sequence[float], ratios: Sequence[float],
               bandwidths: Sequence[float], threshold: float = 0.5, cap: int = 4096) -> List[ClaimRow]:
    rows = []
    for c in compute_ms:
        for r in ratios:
            rows += sweep(replace(p, compute_ms_per_batch=c, gtc_ratio=r), bandwidths, threshold, cap)
    return rows


def plot(p: ScalingParams, bandwidths: Sequence[float], out: str, threshold: float = 0.5, cap: int = 4096,
         curve_bandwidths: Sequence[float] = (1.0, 10.0, 100.0), max_n: int = 1024) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"ddp": "tab:blue", "gtc": "tab:red", "bmuf": "tab:green"}
    styles = [":", "--", "-"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    ns = sorted({int(round(2 ** (i / 4))) for i in range(int(4 * math.log2(max_n)) + 1)})
    unit = "frames/s" if p.frames_per_batch else "batches/s"
    for bw, ls in zip(curve_bandwidths, styles):
        q = replace(p, bandwidth_gbps=bw)
        for m in MODES:
            a1.plot(ns, [throughput(m, n, q) for n in ns], ls, color=colors[m], label=f"{m} {bw:g} Gb/s")
    ideal = [throughput("ddp", 1, p) * n for n in ns]
    a1.plot(ns, ideal, color="0.6", lw=0.8, label="linear")
    a1.set_xscale("log", base=2)
    a1.set_yscale("log")
    a1.set_xlabel("workers N")
    a1.set_ylabel(f"throughput ({unit})")
    a1.set_title(f"{p.params / 1e6:.0f} M params, {p.compute_ms_per_batch:g} ms/batch, GTC x{p.gtc_ratio:g}, "
                 f"tau={p.sync_period}")
    a1.legend(fontsize=7, ncol=3)
    a1.grid(alpha=0.3)
    bws = sorted(set(list(bandwidths) + [1.0, 100.0]))
    fine = [10 ** (i / 20) for i in range(41)]
    for m in MODES:
        a2.plot(fine, [max_workers(m, replace(p, bandwidth_gbps=b), threshold, cap) for b in fine],
                color=colors[m], label=m)
    a2.axhline(cap, color="0.6", lw=0.8, ls=":", label=f"cap {cap}")
    a2.set_xscale("log")
    a2.set_yscale("log", base=2)
    a2.set_xlabel("bandwidth (Gb/s)")
    a2.set_ylabel(f"max workers at efficiency >= {threshold:.0%}")
    a2.set_title(f"where scaling stops (latency {p.latency_us:g} us)")
    a2.set_xlim(min(bws), max(bws))
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def bench_inputs(path, gtc_mode: str = "gtc:frac=0.01") -> dict:
    """The model's measured inputs from ``tools/bench/dist.py --json``: compute ms per batch, the GTC
    payload compression of ``gtc_mode``, the parameters and frames per batch, and a sentence saying where
    they came from. Compute is a step's time less its communication time in the first of bmuf, ma, ddp
    that was measured: bmuf and ma communicate after the optimiser step, while DDP's hooks overlap the
    backward pass, so subtracting their (overlapped) time would understate the compute."""
    import json

    d = json.loads(Path(path).read_text())
    rows = {r["mode"]: r for r in d["results"]}
    base = next((m for m in ("bmuf", "ma", "ddp") if m in rows), None)
    if base is None or gtc_mode not in rows:
        raise ValueError(f"needs one of bmuf, ma, ddp and {gtc_mode}; it has {', '.join(rows)}")
    b, gtc = rows[base], rows[gtc_mode]
    comm_ms = 1e3 * b["comm_seconds"] / b["steps"]
    compute_ms = 1e3 * b["step_s"] - comm_ms
    if compute_ms <= 0 or not gtc["payload_bytes"]:
        raise ValueError("no compute time or no GTC payload measured")
    ratio = gtc["dense_bytes"] / gtc["payload_bytes"]
    st = d["setup"]
    frames = st["batch"] * st["frames"]
    note = (f"Measured by tools/bench/dist.py ({path}): {st['world_size']} gloo processes x 1 CPU thread, LSTM "
            f"{st['layers']} x {st['hidden']} ({b['nparams']:,} parameters), {st['batch']} x {st['frames']} frames "
            f"a batch, {st['steps']} timed steps: {base} step {1e3 * b['step_s']:.0f} ms of which "
            f"{comm_ms:.0f} ms communication -> compute {compute_ms:.0f} ms per batch; {gtc_mode} sent a fraction "
            f"{gtc['elements_sent'] / gtc['elements_total']:.4g} of the elements -> R = {ratio:.1f}.")
    return {"compute_ms_per_batch": compute_ms, "gtc_ratio": ratio, "params": float(b["nparams"]),
            "frames_per_batch": float(frames), "note": note}


def _fmt_n(n: int, cap: int) -> str:
    return f">={cap}" if n >= cap else str(n)


def markdown(p: ScalingParams, rows: List[ClaimRow], grid: List[ClaimRow], command: str, png_name: str,
             threshold: float, cap: int, factor: float = 4.0, inputs_note: str = "") -> str:
    eff_ns = (2, 16, 64, 256)
    lines = [
        "# Scaling model: ddp, gtc and bmuf against the number of workers",
        "",
        f"![throughput and scaling limits]({png_name})",
        "",
        "Generated by (every number below comes from this command):",
        "",
        "```",
        command,
        "```",
        "",
        *([inputs_note, ""] if inputs_note else []),
        "## Assumptions",
        "",
        f"- Model: {p.params:.4g} parameters x {p.bytes_per_param} bytes = {p.model_bytes / 1e6:.1f} MB of "
        f"gradients, sent in {p.buckets} DDP bucket(s) of at most {p.bucket_mb:g} MiB.",
        f"- Compute: {p.compute_ms_per_batch:g} ms per batch per worker (forward + backward + update), the same "
        "for every N (weak scaling: each worker keeps its batch size).",
        f"- Network: alpha-beta model, latency alpha = {p.latency_us:g} us per message, bandwidth beta per "
        "worker link swept over 1-100 Gb/s; ring algorithms:",
        "  all-reduce of M bytes `2(N-1) alpha + 2(N-1)/N M/beta`; all-gather of m bytes per worker "
        "`(N-1) alpha + (N-1) m/beta`.",
        f"- ddp: one ring all-reduce of the gradient bytes per step (per bucket). gtc: per bucket an all-gather "
        f"of an 8-byte header and an all-gather of the codes, each worker sending B/R bytes (R = {p.gtc_ratio:g}, "
        f"the payload compression against dense, i.e. a fraction 1/R of the elements at 4 bytes a code), plus "
        f"{p.decode_ns_per_code:g} ns per decoded code. bmuf: one ring all-reduce of the parameters every "
        f"tau = {p.sync_period} steps.",
        f"- No overlap of communication with compute (overlap = {p.overlap:g}); efficiency = compute time / "
        f"step time; a mode stops scaling at the largest N with efficiency >= {threshold:.0%} "
        f"(searched up to {cap} workers).",
        "- Not modelled: statistical efficiency (BMUF needs more data at large N and a tuned block momentum; "
        "GTC matches dense SGD at moderate ratios), stragglers, NIC sharing, hierarchical reductions.",
        "",
        f"## Bandwidth sweep ({p.compute_ms_per_batch:g} ms/batch, R = {p.gtc_ratio:g}, tau = {p.sync_period})",
        "",
        "| bandwidth (Gb/s) | max N ddp | max N gtc | max N bmuf | bmuf / gtc | "
        + " | ".join(f"eff ddp/gtc/bmuf N={n}" for n in eff_ns) + " |",
        "|---|---|---|---|---|" + "---|" * len(eff_ns),
    ]
    for r in rows:
        q = replace(p, bandwidth_gbps=r.bandwidth_gbps)
        effs = " | ".join("/".join(f"{efficiency(m, n, q):.2f}" for m in MODES) for n in eff_ns)
        lines.append(f"| {r.bandwidth_gbps:g} | {_fmt_n(r.n_ddp, cap)} | {_fmt_n(r.n_gtc, cap)} | "
                     f"{_fmt_n(r.n_bmuf, cap)} | {'>=' if r.n_bmuf >= cap else ''}{r.ratio:.1f} | {effs} |")
    lines += [
        "",
        f"## The article's claim: BMUF scales to about {factor:g}x as many workers as GTC",
        "",
        f"Grid over compute time, GTC ratio and bandwidth; \"holds\" means max N(bmuf) >= {factor:g} x max N(gtc) "
        f"(a bmuf limit at the cap is a lower bound).",
        "",
        "| compute ms | R | Gb/s | max N ddp | max N gtc | max N bmuf | bmuf / gtc | holds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in grid:
        lines.append(f"| {r.compute_ms:g} | {r.gtc_ratio:g} | {r.bandwidth_gbps:g} | {_fmt_n(r.n_ddp, cap)} | "
                     f"{_fmt_n(r.n_gtc, cap)} | {_fmt_n(r.n_bmuf, cap)} | "
                     f"{'>=' if r.n_bmuf >= cap else ''}{r.ratio:.1f} | {'yes' if r.holds(factor) else 'no'} |")
    held = [r for r in grid if r.holds(factor)]
    lines += ["", f"The claim holds in {len(held)} of {len(grid)} grid settings.", "",
              f"Bytes on the wire per step and worker: gtc (N-1) B/R, bmuf 2(N-1)/N B/tau. They are equal at "
              f"N* = 2R/tau = {2 * p.gtc_ratio / p.sync_period:g} workers for R = {p.gtc_ratio:g}, tau = "
              f"{p.sync_period}: below N* GTC sends less, above it BMUF does, and BMUF's cost stops growing with N "
              f"(only its latency term 2(N-1) alpha / tau does), so its limit is set by bandwidth at small N or by "
              f"the cap.", "",
              "## At the article's scale (GTC on 16 workers, BMUF on 64)", "",
              "For each compute time and GTC ratio of the grid: the bandwidth below which GTC stops scaling before "
              "16 workers, the bandwidth BMUF needs for 64 workers, and BMUF's limit at GTC's 16-worker bandwidth.",
              "", "| compute ms | R | Gb/s where gtc max N = 16 | Gb/s bmuf needs for N = 64 | max N bmuf there |",
              "|---|---|---|---|---|"]
    seen = []
    for r in grid:
        if (r.compute_ms, r.gtc_ratio) in seen:
            continue
        seen.append((r.compute_ms, r.gtc_ratio))
        q = replace(p, compute_ms_per_batch=r.compute_ms, gtc_ratio=r.gtc_ratio)
        b_gtc = bandwidth_for_workers("gtc", q, 16, threshold)
        b_bmuf = bandwidth_for_workers("bmuf", q, 64, threshold)
        n_b = _fmt_n(max_workers("bmuf", replace(q, bandwidth_gbps=b_gtc), threshold, cap), cap) if b_gtc else "-"
        lines.append(f"| {r.compute_ms:g} | {r.gtc_ratio:g} | {b_gtc:.3g} | {b_bmuf:.3g} | {n_b} |"
                     if b_gtc and b_bmuf else f"| {r.compute_ms:g} | {r.gtc_ratio:g} | {b_gtc} | {b_bmuf} | {n_b} |")
    return "\n".join(lines) + "\n"
