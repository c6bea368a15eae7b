"""The recipe's report (stage 16): WER tables, semi-supervised gains and a plot, from the decode dirs.

Everything is read from files the stages wrote (``exp/<system>/decode_<set>/best_wer`` and ``hyp.txt``,
``data/<set>/text``), never typed in. Systems that have not been trained yet are simply absent.

Comparisons, for each set:
* relative WER reduction of each semi-supervised student over the supervised-only one, with the paired
  bootstrap of Bisani and Ney: the 95% intervals of both systems (kaldialign), the 95% interval of the
  relative reduction from a paired bootstrap (both systems on the same resampled utterances) and the
  probability that the semi-supervised one is better; a reduction whose paired interval holds 0 is
  reported as "none" (overlapping per-system intervals alone are too strict a test);
* the share of the supervised-to-oracle gap that it recovers (when the oracle student exists).

Two optional sections, kept out of the main table (they would repeat one system many times there):
* the unlabelled-data sweep (stage 14): WER against the unlabelled/labelled hour ratio, from the
  ``sweep/x<R>`` dirs and the ``sweep.json`` each holds (what its subset of train_unsup
  holds), with ``student_sup`` at 0 and ``student_ssl_inter`` (the whole set) at the top; plotted in
  ``RESULTS_sweep.png``;
* distributed training (stage 15): per sync mode (``dist_<mode>``), WER, bytes sent per worker,
  compression against dense all-reduce and wall time, from the ``comm.json`` rank 0 writes.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

PathLike = Union[str, Path]

# (directory under exp/, label), in the order of the pipeline
SYSTEMS = [
    ("mono", "monophone GMM"),
    ("tri", "triphone GMM"),
    ("teacher", "BLSTM teacher"),
    ("student_sup", "LSTM student, supervised only"),
    ("student_ssl_inter", "LSTM student, semi-supervised, interleaved"),
    ("student_ssl_seg", "LSTM student, semi-supervised, segregated"),
    ("student_oracle", "LSTM student, oracle (all data labelled)"),
]
SSL_SYSTEMS = ("student_ssl_inter", "student_ssl_seg")
SWEEP_PREFIX = "sweep/x"  # stage 14: exp/sweep/x<R>, R = unlabelled/labelled hours (design.md)
SWEEP_JSON = "sweep.json"  # written there by asrkit.bin.subset_cuts --summary
DIST_PREFIX = "dist_"  # stage 15: exp/dist_<sync mode> (design.md)
COMM_JSON = "comm.json"  # written there by rank 0 (asrkit.nnet.train.Trainer._write_comm_summary)
DIST_ORDER = ("ddp", "gtc", "bmuf", "ma")
_WER = re.compile(r"%WER\s+([\d.]+)\s+\[\s*(\d+)\s*/\s*(\d+)")


@dataclass
class Wer:
    wer: float
    errors: int
    words: int
    decode_dir: Path


def read_wer(decode_dir: PathLike) -> Optional[Wer]:
    """The best ``%WER`` of a decode dir, or None when it has not been decoded."""
    f = Path(decode_dir) / "best_wer"
    if not f.exists():
        return None
    m = _WER.search(f.read_text(encoding="utf-8"))
    if not m:
        raise ValueError(f"{f}: no %WER line")
    return Wer(float(m.group(1)), int(m.group(2)), int(m.group(3)), Path(decode_dir))


def collect(exp_dir: PathLike, sets: Sequence[str]) -> Dict[str, Dict[str, Wer]]:
    """{system: {set: Wer}} for every system directory that has decodes (known systems first)."""
    exp = Path(exp_dir)
    names = [s for s, _ in SYSTEMS] + sorted(p.name for p in exp.glob("*") if p.is_dir()
                                             and p.name not in dict(SYSTEMS))
    names += sorted(f"sweep/{p.name}" for p in (exp / "sweep").glob("*") if p.is_dir())
    out: Dict[str, Dict[str, Wer]] = {}
    for name in names:
        row = {s: w for s in sets if (w := read_wer(exp / name / f"decode_{s}")) is not None}
        if row:
            out[name] = row
    return out


def is_sweep_or_dist(name: str) -> bool:
    """Systems of stages 14-15: reported in their own sections, not in the main table."""
    return name.startswith(SWEEP_PREFIX) or name.startswith(DIST_PREFIX)


def _read_json(path: Path, required: Sequence[str]) -> dict:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read it as json: {e}") from e
    missing = [k for k in required if not isinstance(d, dict) or k not in d]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    return d


@dataclass
class SweepPoint:
    system: str
    ratio: float  # unlabelled hours / labelled hours the student trained on
    requested: str  # the ratio asked for ("0" for the supervised student, "all" for the whole set)
    unlabelled_hours: float
    wers: Dict[str, Wer]


def collect_sweep(exp_dir: PathLike, sets: Sequence[str]) -> List[SweepPoint]:
    """The sweep's points by ratio: every decoded ``sweep/x<R>`` (its ratio from its
    ``sweep.json``), then ``student_sup`` at 0 and ``student_ssl_inter`` at the whole set's ratio (the
    source and labelled hours the sweep.json files record). Empty when no sweep point is decoded."""
    exp = Path(exp_dir)
    table = collect(exp, sets)
    points, infos = [], []
    for name in sorted(n for n in table if n.startswith(SWEEP_PREFIX)):
        f = exp / name / SWEEP_JSON
        if not f.exists():
            raise ValueError(f"{f}: not found; stage 14 writes it beside the subset that {name} was trained on")
        info = _read_json(f, ("ratio", "ratio_requested", "hours", "labelled_hours", "source", "source_hours",
                              "seed"))
        if not info["labelled_hours"] or info["ratio"] is None:
            raise ValueError(f"{f}: no labelled hours or ratio (the subset was not asked as a ratio)")
        infos.append((f, info))
        req = info["ratio_requested"]
        points.append(SweepPoint(name, float(info["ratio"]), f"{req:g}", float(info["hours"]), table[name]))
    if not points:
        return []
    f0, i0 = infos[0]
    for f, info in infos[1:]:  # one labelled set, one unlabelled set, one shuffle
        for k in ("source", "source_hours", "labelled_hours", "seed"):
            same = (math.isclose(info[k], i0[k], rel_tol=1e-9) if isinstance(i0[k], float) else info[k] == i0[k])
            if not same:
                raise ValueError(f"{f}: {k} {info[k]!r} differs from {i0[k]!r} in {f0}: the points of a sweep "
                                 f"must be subsets of one set, by one seed")
    if "student_sup" in table:
        points.append(SweepPoint("student_sup", 0.0, "0", 0.0, table["student_sup"]))
    if "student_ssl_inter" in table:
        points.append(SweepPoint("student_ssl_inter", i0["source_hours"] / i0["labelled_hours"], "all",
                                 float(i0["source_hours"]), table["student_ssl_inter"]))
    return sorted(points, key=lambda p: p.ratio)


@dataclass
class DistRun:
    system: str
    mode: str
    world_size: int
    wers: Dict[str, Wer]
    payload_per_worker: float  # bytes each worker contributed over the run, mean over workers
    wire_per_worker: float  # bytes each worker put on the network (ring collectives), mean over workers
    compression: Optional[float]  # dense all-reduce payload over the same steps / payload (None: nothing sent)
    train_seconds: float  # rank 0's training run: loop, dev evaluation and checkpoints
    steps: int  # updates of each worker
    steps_timed: int  # of which this last launch ran (fewer after a resume)


def collect_dist(exp_dir: PathLike, sets: Sequence[str]) -> List[DistRun]:
    """One row per ``dist_<mode>`` dir that holds a ``comm.json`` (decoded or not yet); a decoded
    dir without one is an error naming the file."""
    exp = Path(exp_dir)
    table = collect(exp, sets)
    names = {p.name for p in exp.glob(DIST_PREFIX + "*") if p.is_dir() and (p / COMM_JSON).exists()}
    names |= {n for n in table if n.startswith(DIST_PREFIX)}
    rank = {m: i for i, m in enumerate(DIST_ORDER)}
    runs = []
    for name in sorted(names, key=lambda n: (rank.get(n[len(DIST_PREFIX):], len(rank)), n)):
        f = exp / name / COMM_JSON
        if not f.exists():
            raise ValueError(f"{f}: not found; rank 0 writes it when distributed training of {name} ends")
        c = _read_json(f, ("mode", "world_size", "train_seconds", "steps", "steps_this_run"))
        ranks = c.get("per_rank") or [c]  # the mean over workers; rank 0's numbers where no per-rank list
        for i, r in enumerate(ranks):
            missing = [k for k in ("payload_bytes", "wire_bytes", "dense_bytes") if k not in r]
            if missing:
                raise ValueError(f"{f}: rank {i}: missing {', '.join(missing)}")
        payload = sum(r["payload_bytes"] for r in ranks)
        dense = sum(r["dense_bytes"] for r in ranks)
        runs.append(DistRun(name, c["mode"], int(c["world_size"]), table.get(name, {}), payload / len(ranks),
                            sum(r["wire_bytes"] for r in ranks) / len(ranks), dense / payload if payload else None,
                            float(c["train_seconds"]), int(c["steps"]), int(c["steps_this_run"])))
    return runs


def _history_steps(sys_dir: Path) -> Optional[int]:
    """The step count of the last epoch line of history.jsonl, None where there is none."""
    f = sys_dir / "history.jsonl"
    if not f.exists():
        return None
    last = None
    for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                last = json.loads(line)["step"]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{f}: line {i}: not an epoch line with a step: {e}") from e
    return last


def fmt_bytes(n: float) -> str:
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.3g} {unit}"
    return f"{n:.0f} B"


def _read_text(path: Path) -> Dict[str, List[str]]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        f = line.split()
        if f:
            out[f[0]] = f[1:]
    return out


def paired_bootstrap(ref_text: Path, hyp1: Path, hyp2: Path, replications: int = 2000, seed: int = 0) -> dict:
    """kaldialign's bootstrap of two systems on the same references (missing hypotheses are empty)."""
    import kaldialign

    refs = _read_text(ref_text)
    h1, h2 = _read_text(hyp1), _read_text(hyp2)
    utts = sorted(refs)
    return kaldialign.bootstrap_wer_ci([refs[u] for u in utts], [h1.get(u, []) for u in utts],
                                       [h2.get(u, []) for u in utts], replications=replications, seed=seed)


BOOTSTRAP_BLOCK = 1 << 22  # utterance draws held at once by paired_difference


def paired_difference(ref_text: Path, hyp1: Path, hyp2: Path, replications: int = 2000, seed: int = 0) -> dict:
    """Paired bootstrap (Bisani and Ney) of the difference of two systems on the same utterances: each
    replication draws utterances with replacement and scores both systems on the same draw.

    Returns ``delta`` (WER1 - WER2, in %) and ``rel`` (that difference over WER1, in %), each with its
    95% interval (``*_lo``, ``*_hi``, percentiles 2.5 and 97.5): a reduction is significant when the
    interval of ``delta`` lies above zero."""
    import kaldialign
    import numpy as np

    refs = _read_text(ref_text)
    h1, h2 = _read_text(hyp1), _read_text(hyp2)
    utts = sorted(refs)
    n = np.array([len(refs[u]) for u in utts], dtype=np.float64)
    e1 = np.array([kaldialign.edit_distance(refs[u], h1.get(u, []))["total"] for u in utts], dtype=np.float64)
    e2 = np.array([kaldialign.edit_distance(refs[u], h2.get(u, []))["total"] for u in utts], dtype=np.float64)
    if n.sum() == 0:
        raise ValueError(f"{ref_text}: no reference words")
    # the draws in blocks of replications (the generator's stream continues across calls, so the indices
    # are those of one (replications, utterances) draw) keep memory at ~32 MB, not 16 bytes x both
    rng, rows = np.random.default_rng(seed), max(1, BOOTSTRAP_BLOCK // max(len(utts), 1))
    words, err1, err2 = (np.empty(replications) for _ in range(3))
    for a in range(0, replications, rows):
        idx = rng.integers(0, len(utts), size=(min(rows, replications - a), len(utts)))
        words[a:a + len(idx)], err1[a:a + len(idx)], err2[a:a + len(idx)] = (x[idx].sum(1) for x in (n, e1, e2))
    delta = 100.0 * (err1 - err2) / np.maximum(words, 1)
    rel = 100.0 * (err1 - err2) / np.maximum(err1, 1)
    out = {"delta": 100.0 * (e1.sum() - e2.sum()) / n.sum(),
           "rel": 100.0 * (e1.sum() - e2.sum()) / e1.sum() if e1.sum() else 0.0}
    for k, v in (("delta", delta), ("rel", rel)):
        out[f"{k}_lo"], out[f"{k}_hi"] = (float(x) for x in np.percentile(v, [2.5, 97.5]))
    return out


def _label(name: str) -> str:
    return dict(SYSTEMS).get(name, name)


def write_report(exp_dir: PathLike, data_dir: PathLike, sets: Sequence[str], out: PathLike,
                 title: str = "Results", plot: bool = True) -> str:
    """Write RESULTS.md (and RESULTS.png beside it); returns the markdown."""
    from asrkit.utils.atomic import atomic_write_text

    full = collect(exp_dir, sets)
    table = {n: row for n, row in full.items() if not is_sweep_or_dist(n)}
    lines = [f"# {title}", "", "Written by `python -m asrkit.bin.report` from the decode dirs under "
             f"`{exp_dir}/`; WER in %, best LM weight on dev, the same weight on the test sets.", ""]
    lines += ["| system | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for name, row in table.items():
        cells = [f"{row[s].wer:.2f}" if s in row else "" for s in sets]
        lines.append(f"| {_label(name)} (`{name}`) | " + " | ".join(cells) + " |")
    lines.append("")
    if len(full) > len(table):
        lines += ["The sweep over the amount of unlabelled data (`sweep/x<R>`) and the distributed "
                  "runs (`dist_<mode>`) have their own sections below.", ""]
    sup = table.get("student_sup", {})
    oracle = table.get("student_oracle", {})
    rows = []
    for name in SSL_SYSTEMS:
        for s in sets:
            if name not in table or s not in table[name] or s not in sup:
                continue
            a, b = sup[s], table[name][s]
            ref, hyp1, hyp2 = Path(data_dir) / s / "text", a.decode_dir / "hyp.txt", b.decode_dir / "hyp.txt"
            boot = paired_bootstrap(ref, hyp1, hyp2)
            diff = paired_difference(ref, hyp1, hyp2)
            rel = diff["rel"]  # from the error counts, as its interval (not from the rounded WERs)
            s1, s2 = boot["system1"], boot["system2"]
            gap = ""
            if s in oracle:  # a share of the gap means something only when the oracle is better
                gap = (f"{100.0 * (a.wer - b.wer) / (a.wer - oracle[s].wer):.0f}%" if oracle[s].wer < a.wer
                       else "- (oracle not better)")
            if diff["delta_lo"] > 0:
                verdict = f"{rel:.1f}%"
            elif diff["delta_hi"] < 0:
                verdict = f"none (worse by {-rel:.1f}%)"
            else:
                verdict = "none (0 in the interval)"
            rows.append(f"| `{name}` | {s} | {a.wer:.2f} [{100 * s1['ci95min']:.2f}, {100 * s1['ci95max']:.2f}] | "
                        f"{b.wer:.2f} [{100 * s2['ci95min']:.2f}, {100 * s2['ci95max']:.2f}] | "
                        f"{rel:.1f}% [{diff['rel_lo']:.1f}, {diff['rel_hi']:.1f}] | {verdict} | "
                        f"{boot['p_s2_improv_over_s1']:.3f} | {gap} |")
    if rows:
        lines += ["## Semi-supervised students against the supervised-only student", "",
                  "95% bootstrap intervals (Bisani and Ney, 2,000 replications): of each system's WER, and, "
                  "paired (both systems scored on the same resampled utterances), of the relative reduction; a "
                  "reduction whose paired interval holds 0 is reported as none. P(better): the share of "
                  "replications in which the semi-supervised student made fewer errors. Gap recovered: the "
                  "share of the supervised-to-oracle WER gap.", "",
                  "| system | set | supervised WER [95% CI] | semi-supervised WER [95% CI] | relative reduction "
                  "[95% CI] | "
                  "significant reduction | P(better) | gap recovered |",
                  "|---|---|---|---|---|---|---|---|", *rows, ""]
    if plot and table:
        png = Path(out).with_suffix(".png")
        _plot(table, sets, png)
        lines += [f"![WER per system]({png.name})", ""]
    lines += _sweep_section(exp_dir, sets, Path(out), plot)
    lines += _dist_section(exp_dir, sets)
    text = "\n".join(lines)
    atomic_write_text(out, text)
    return text


def _plot(table: Dict[str, Dict[str, Wer]], sets: Sequence[str], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    width = 0.8 / max(1, len(sets))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names)), 4))
    for i, s in enumerate(sets):
        ax.bar([j + i * width for j in range(len(names))], [table[n][s].wer if s in table[n] else 0 for n in names],
               width, label=s)
    ax.set_xticks([j + width * (len(sets) - 1) / 2 for j in range(len(names))])
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylabel("WER (%)")
    ax.legend()
    fig.tight_layout()
    from asrkit.utils.atomic import atomic_path

    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _sweep_section(exp_dir: PathLike, sets: Sequence[str], out: Path, plot: bool) -> List[str]:
    points = collect_sweep(exp_dir, sets)
    if not points:
        return []
    lines = ["## Amount of unlabelled data (stage 14)", "",
             "The interleaved student trained on nested random subsets of the unlabelled set (one seeded shuffle, "
             "each subset a prefix of it, so each holds the smaller ones; `sweep.json` in each dir records it). "
             "Ratio: unlabelled hours / labelled hours; 0 is the supervised-only student, `all` the whole "
             "unlabelled set (stage 11). WER in %.", "",
             "| unlabelled / labelled | requested | unlabelled hours | system | " + " | ".join(sets) + " |",
             "|---|---|---|---|" + "---|" * len(sets)]
    for p in points:
        cells = [f"{p.wers[s].wer:.2f}" if s in p.wers else "" for s in sets]
        lines.append(f"| {p.ratio:.2f} | {p.requested} | {p.unlabelled_hours:.4g} | `{p.system}` | "
                     + " | ".join(cells) + " |")
    lines.append("")
    if plot:
        png = out.with_name(out.stem + "_sweep.png")
        _plot_sweep(points, sets, png)
        lines += [f"![WER against the amount of unlabelled data]({png.name})", ""]
    return lines


def _dist_section(exp_dir: PathLike, sets: Sequence[str]) -> List[str]:
    runs = collect_dist(exp_dir, sets)
    if not runs:
        return []
    exp = Path(exp_dir)
    lines = ["## Distributed training (stage 15)", "",
             "The interleaved student trained by several processes under torchrun, once per sync mode, from "
             "`comm.json` (rank 0). Sent: the payload each worker contributes over the run (gradients for ddp, "
             "GTC's index/sign codes, BMUF's parameters at each block sync), mean over workers; wire: what ring "
             "collectives put on the network per worker. Compression: the payload dense gradient all-reduce "
             "would have sent in the same steps, over the payload sent. Steps: updates of each worker. Wall "
             "time: the training run of rank 0 (dev evaluation and checkpoints included, decoding not). WER in %.",
             "", "| sync | workers | " + " | ".join(sets) + " | sent per worker | wire per worker | "
             "compression vs dense all-reduce | steps | wall time (s) |",
             "|---|---|" + "---|" * len(sets) + "---|---|---|---|---|"]
    ref = collect(exp, sets).get("student_ssl_inter")
    if ref:
        steps = _history_steps(exp / "student_ssl_inter")
        cells = [f"{ref[s].wer:.2f}" if s in ref else "" for s in sets]
        lines.append("| none: one process (`student_ssl_inter`) | 1 | " + " | ".join(cells)
                     + f" | - | - | - | {steps if steps is not None else ''} | - |")
    for r in runs:
        cells = [f"{r.wers[s].wer:.2f}" if s in r.wers else "" for s in sets]
        comp = f"x{r.compression:.3g}" if r.compression is not None else "n/a (nothing sent)"
        wall = f"{r.train_seconds:.1f}"
        if r.steps_timed < r.steps:  # a resumed run times only its last launch
            wall += f" (last launch: {r.steps_timed} of {r.steps} steps)"
        lines.append(f"| {r.mode} (`{r.system}`) | {r.world_size} | " + " | ".join(cells)
                     + f" | {fmt_bytes(r.payload_per_worker)} | {fmt_bytes(r.wire_per_worker)} | {comp} | "
                       f"{r.steps} | {wall} |")
    lines.append("")
    return lines


def _plot_sweep(points: List[SweepPoint], sets: Sequence[str], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from asrkit.utils.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    for s in sets:
        xy = [(p.ratio, p.wers[s].wer) for p in points if s in p.wers]
        if xy:
            ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", label=s)
    ax.set_xlabel("unlabelled hours / labelled hours")
    ax.set_ylabel("WER (%)")
    ax.set_title("Interleaved student against the amount of unlabelled data")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
