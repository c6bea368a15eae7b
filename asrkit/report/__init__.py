"""The recipe's report (stage 16): WER tables, semi-supervised gains and a plot, from the decode dirs.

Everything is read from files the stages wrote (``exp/<system>/decode_<set>/best_wer`` and ``hyp.txt``,
``data/<set>/text``, ``data/<set>/utt2cond``, ``exp/<system>/history.jsonl``), never typed in. Systems that
have not been trained yet are simply absent. A system trained with several seeds (``--seeds``) has one
dir per seed, ``exp/<system>/seed<S>/``; its WER is the mean over seeds, shown with the standard deviation.

Test sets come first in every table; dev sets (``dev``, ``dev_*``) come last, marked as the tuning sets
(they pick the checkpoint, the LM weight, beam, tree size and epochs). The main table gives each
network's updates (the last ``step`` of its ``history.jsonl``).

Comparisons, for each set:
* relative WER reduction of each semi-supervised student over the supervised-only one, with a paired
  bootstrap (:mod:`asrkit.decode.bootstrap`): over utterances (Bisani and Ney) and, with several seeds,
  over seeds too, so that the interval holds the training noise as well; a reduction whose interval
  holds 0 is reported as "none". One seed: the 95% intervals of both systems (kaldialign) and
  P(better); several: mean and standard deviation over seeds;
* the share of the supervised-to-oracle gap that it recovers (when the oracle student exists). The
  oracle is all data labelled with GMM-aligned hard targets: a reference, not an upper bound (soft
  targets from a teacher can beat hard alignments), so a share over 100% is possible;
* interleaved against segregated, as the article measured it: how much larger the interleaved student's
  relative reduction is than the segregated one's, and the paired test of the two;
* per condition (where ``data/<set>/utt2cond`` exists, e.g. the synthetic corpus's clean / noisy /
  reverb / noisy_reverb): the reduction on each condition's utterances, and whether the reduction is
  larger on noisier test data (the article's "greater improvements coming on noisier data").

An ablation section (:mod:`asrkit.report.ablation`) where ``exp/`` holds variants of the teacher or of the
supervised student (``teacher_<what>``, ``student_sup_<what>``): each run's WER beside its baseline's,
labelled by what its recorded config changes.

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
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, Path]

# (directory under exp/, label), in the order of the pipeline
SYSTEMS = [
    ("mono", "monophone GMM"),
    ("tri", "triphone GMM"),
    ("teacher", "BLSTM teacher"),
    ("teacher_realign", "BLSTM teacher on the first teacher's realignment"),
    ("student_sup", "LSTM student, supervised only"),
    ("student_sup_realign", "LSTM student, supervised only, on the teacher's realignment"),
    ("student_ssl_inter", "LSTM student, semi-supervised, interleaved"),
    ("student_ssl_seg", "LSTM student, semi-supervised, segregated"),
    ("student_oracle", "LSTM student, oracle (all data labelled, GMM-aligned hard targets)"),
]
SSL_SYSTEMS = ("student_ssl_inter", "student_ssl_seg")
SWEEP_PREFIX = "sweep/x"  # stage 14: exp/sweep/x<R>, R = unlabelled/labelled hours (design.md)
SWEEP_JSON = "sweep.json"  # written there by asrkit.bin.subset_cuts --summary
DIST_PREFIX = "dist_"  # stage 15: exp/dist_<sync mode> (design.md)
COMM_JSON = "comm.json"  # written there by rank 0 (asrkit.nnet.train.Trainer._write_comm_summary)
DIST_ORDER = ("ddp", "gtc", "bmuf", "ma")
DIST_SIM_PREFIX = "dist_sim_"  # stage 15 with N simulated workers: exp/dist_sim_<mode>_n<N>
_WER = re.compile(r"%WER\s+([\d.]+)\s+\[\s*(\d+)\s*/\s*(\d+)")
_SEED_DIR = re.compile(r"seed(\d+)$")
# how noisy each condition of the synthetic corpus is (asrkit.synth.utterance.CONDITIONS), for the claim
NOISINESS = {"clean": 0, "reverb": 1, "noisy": 1, "noisy_reverb": 2}


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


@dataclass
class SeedWers:
    """One system's results on one set: a run per seed (``runs``: seed -> Wer; ``""`` for a system
    trained once, in ``exp/<system>/``). ``wer`` is the mean over seeds."""
    runs: Dict[str, Wer]

    @property
    def wer(self) -> float:
        return sum(w.wer for w in self.runs.values()) / len(self.runs)

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 for one run)."""
        if len(self.runs) < 2:
            return 0.0
        m = self.wer
        return math.sqrt(sum((w.wer - m) ** 2 for w in self.runs.values()) / (len(self.runs) - 1))

    @property
    def seeded(self) -> bool:
        return "" not in self.runs

    @property
    def decode_dir(self) -> Path:
        """The decode dir of a system trained once (the first seed's otherwise)."""
        return next(iter(self.runs.values())).decode_dir

    def cell(self) -> str:
        if not self.seeded:
            return f"{self.wer:.2f}"
        return f"{self.wer:.2f} ± {self.std:.2f}"


def seed_dirs(sys_dir: Path) -> List[Tuple[str, Path]]:
    """``[("", sys_dir)]`` for a system trained once, else ``[(S, sys_dir/seed<S>), ...]`` by seed."""
    seeds = sorted(((int(m.group(1)), p) for p in sys_dir.glob("seed*") if p.is_dir()
                    and (m := _SEED_DIR.match(p.name))), key=lambda x: x[0])
    if not seeds or any(sys_dir.glob("decode_*")):
        return [("", sys_dir)]
    return [(str(n), p) for n, p in seeds]


def collect(exp_dir: PathLike, sets: Sequence[str]) -> Dict[str, Dict[str, SeedWers]]:
    """{system: {set: SeedWers}} for every system directory that has decodes (known systems first)."""
    exp = Path(exp_dir)
    names = [s for s, _ in SYSTEMS] + sorted(p.name for p in exp.glob("*") if p.is_dir()
                                             and p.name not in dict(SYSTEMS))
    names += sorted(f"sweep/{p.name}" for p in (exp / "sweep").glob("*") if p.is_dir())
    out: Dict[str, Dict[str, SeedWers]] = {}
    for name in names:
        row = {}
        for s in sets:
            runs = {seed: w for seed, d in seed_dirs(exp / name) if (w := read_wer(d / f"decode_{s}")) is not None}
            if runs:
                row[s] = SeedWers(runs)
        if row:
            out[name] = row
    return out


def is_dev_set(name: str) -> bool:
    """The tuning sets: dev, dev_* (utils/shared_stages.sh's ordered_eval_sets)."""
    return name == "dev" or name.startswith("dev_")


def headline_order(sets: Sequence[str]) -> List[str]:
    """Test sets first, then the dev (tuning) sets, each in the given order."""
    return [s for s in sets if not is_dev_set(s)] + [s for s in sets if is_dev_set(s)]


def set_header(name: str) -> str:
    return f"{name} (tuning)" if is_dev_set(name) else name


def system_updates(sys_dir: Path) -> List[int]:
    """The updates each seed's run made (the last step of its history.jsonl), where recorded."""
    return [n for _, d in seed_dirs(sys_dir) if (n := _history_steps(d)) is not None]


def fmt_updates(ns: List[int]) -> str:
    if not ns:
        return ""
    if len(set(ns)) == 1:
        return f"{ns[0]}" + (f" (x{len(ns)})" if len(ns) > 1 else "")
    return f"{min(ns)}-{max(ns)}"


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
    runs = []
    for name in sorted(names):
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
    # torchrun runs first, then the simulated ones; each by workers (as numbers, not names), then mode
    rank = {m: i for i, m in enumerate(DIST_ORDER)}
    return sorted(runs, key=lambda r: (r.system.startswith(DIST_SIM_PREFIX), r.world_size,
                                       rank.get(r.mode, len(rank)), r.system))


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


def paired_difference(ref_text: Path, hyp1: Path, hyp2: Path, replications: int = 2000, seed: int = 0) -> dict:
    """Paired bootstrap (Bisani and Ney) of the difference of two systems on the same utterances: each
    replication draws utterances with replacement and scores both systems on the same draw
    (:func:`asrkit.decode.bootstrap.seed_utterance_bootstrap` with one seed).

    Returns ``delta`` (WER1 - WER2, in %) and ``rel`` (that difference over WER1, in %), each with its
    95% interval (``*_lo``, ``*_hi``, percentiles 2.5 and 97.5): a reduction is significant when the
    interval of ``delta`` lies above zero."""
    from asrkit.decode.bootstrap import seed_utterance_bootstrap, utterance_errors

    _, words, errs = utterance_errors(ref_text, [hyp1, hyp2])
    if words.sum() == 0:
        raise ValueError(f"{ref_text}: no reference words")
    d = seed_utterance_bootstrap(errs[0], errs[1], words, replications, seed)
    return {k: d[k] for k in ("delta", "rel", "delta_lo", "delta_hi", "rel_lo", "rel_hi")}


def _label(name: str) -> str:
    return dict(SYSTEMS).get(name, name)


def _errors(data_dir: Path, s: str, a: SeedWers, b: SeedWers, utts: Optional[Sequence[str]] = None):
    """``(seeds, words, errors1[seed, u], errors2[seed, u])`` of two systems on set ``s`` over the seeds
    both have (None when they share none)."""
    from asrkit.decode.bootstrap import utterance_errors

    seeds = [k for k in a.runs if k in b.runs]
    if not seeds:
        return None
    hyps = [a.runs[k].decode_dir / "hyp.txt" for k in seeds] + [b.runs[k].decode_dir / "hyp.txt" for k in seeds]
    _, words, errs = utterance_errors(Path(data_dir) / s / "text", hyps, utts)
    return seeds, words, errs[:len(seeds)], errs[len(seeds):]


def _verdict(diff: dict) -> str:
    if diff["delta_lo"] > 0:
        return f"{diff['rel']:.1f}%"
    if diff["delta_hi"] < 0:
        return f"none (worse by {-diff['rel']:.1f}%)"
    return "none (0 in the interval)"


def _comparison_rows(table, data_dir: Path, sets: Sequence[str]) -> List[str]:
    from asrkit.decode.bootstrap import seed_utterance_bootstrap

    sup = table.get("student_sup", {})
    oracle = table.get("student_oracle", {})
    rows = []
    for name in SSL_SYSTEMS:
        for s in sets:
            if name not in table or s not in table[name] or s not in sup:
                continue
            a, b = sup[s], table[name][s]
            got = _errors(data_dir, s, a, b)
            if got is None:
                rows.append(f"| `{name}` | {set_header(s)} | {a.cell()} | {b.cell()} | - (no seed in common) "
                            f"| | | |")
                continue
            seeds, words, e1, e2 = got
            diff = seed_utterance_bootstrap(e1, e2, words)
            if a.seeded:
                c1, c2, p_better = a.cell(), b.cell(), diff["p_better"]
            else:  # one run each: each system's own interval too, and kaldialign's P(better), as before seeds
                boot = paired_bootstrap(Path(data_dir) / s / "text", a.decode_dir / "hyp.txt", b.decode_dir / "hyp.txt")
                s1, s2 = boot["system1"], boot["system2"]
                c1 = f"{a.wer:.2f} [{100 * s1['ci95min']:.2f}, {100 * s1['ci95max']:.2f}]"
                c2 = f"{b.wer:.2f} [{100 * s2['ci95min']:.2f}, {100 * s2['ci95max']:.2f}]"
                p_better = boot["p_s2_improv_over_s1"]
            gap = ""
            if s in oracle:  # a share of the gap means something only when the oracle is better
                gap = (f"{100.0 * (a.wer - b.wer) / (a.wer - oracle[s].wer):.0f}%" if oracle[s].wer < a.wer
                       else "- (oracle not better)")
            rows.append(f"| `{name}` | {set_header(s)} | {c1} | {c2} | {diff['rel']:.1f}% [{diff['rel_lo']:.1f}, "
                        f"{diff['rel_hi']:.1f}] | {_verdict(diff)} | {p_better:.3f} | {gap} |")
    return rows


def _n_seeds(table) -> List[int]:
    return sorted({len(w.runs) for row in table.values() for w in row.values() if w.seeded})


def write_report(exp_dir: PathLike, data_dir: PathLike, sets: Sequence[str], out: PathLike,
                 title: str = "Results", plot: bool = True) -> str:
    """Write RESULTS.md (and RESULTS.png beside it); returns the markdown."""
    from asrkit.utils.atomic import atomic_write_text

    sets = headline_order(sets)
    exp = Path(exp_dir)
    full = collect(exp_dir, sets)
    table = {n: row for n, row in full.items() if not is_sweep_or_dist(n)}
    seeds = _n_seeds(table)
    seed_note = (f" Systems trained with several seeds ({'/'.join(map(str, seeds))} seeds) show the mean WER over "
                 "seeds ± its standard deviation, each seed with its own LM weight." if seeds else "")
    lines = [f"# {title}", "", "Written by `python -m asrkit.bin.report` from the decode dirs under "
             f"`{exp_dir}/`; WER in %, test sets first. The dev set is the tuning set: it picked each "
             "network's checkpoint and LM weight (the test sets use that weight) and the recipe's beam, tree "
             "size and epochs, so its WERs are optimistic." + seed_note + " Updates: the optimiser steps each "
             "network made (per seed).", ""]
    lines += ["| system | " + " | ".join(map(set_header, sets)) + " | updates |",
              "|---|" + "---|" * len(sets) + "---|"]
    for name, row in table.items():
        cells = [row[s].cell() if s in row else "" for s in sets]
        updates = fmt_updates(system_updates(exp / name))
        lines.append(f"| {_label(name)} (`{name}`) | " + " | ".join(cells) + f" | {updates} |")
    lines.append("")
    rest = [what for prefix, what in ((SWEEP_PREFIX, "the sweep over the amount of unlabelled data (`sweep/x<R>`)"),
                                      (DIST_PREFIX, "the distributed runs (`dist_<mode>`)"))
            if any(n.startswith(prefix) for n in full)]
    if rest:
        lines += ["Reported in their own sections below: " + " and ".join(rest) + ".", ""]
    rows = _comparison_rows(table, Path(data_dir), sets)
    if rows:
        how = ("paired (both systems scored on the same resampled utterances and, with several seeds, the same "
               "resampled seeds: seed and utterance variance both in the interval)")
        lines += ["## Semi-supervised students against the supervised-only student", "",
                  "95% bootstrap intervals (2,000 replications), " + how + ", of the relative reduction; a "
                  "reduction whose interval holds 0 is reported as none. One seed: each system's WER with its own "
                  "95% interval (Bisani and Ney); several: mean ± standard deviation over seeds. P(better): the "
                  "share of replications in which the semi-supervised student made fewer errors. Gap recovered: "
                  "the share of the WER gap between the supervised student and the oracle (all data labelled, "
                  "GMM-aligned hard targets) that the semi-supervised student closes; the oracle is a reference, "
                  "not an upper bound (the teacher's soft targets can be better than hard alignments), so a share "
                  "over 100% can occur.", "",
                  "| system | set | supervised WER | semi-supervised WER | relative reduction [95% CI] | "
                  "significant reduction | P(better) | gap recovered |",
                  "|---|---|---|---|---|---|---|---|", *rows, ""]
    lines += _inter_vs_seg_section(table, Path(data_dir), sets)
    lines += _condition_section(table, Path(data_dir), sets)
    from asrkit.report.ablation import ablation_section  # here: it reads this module's types

    lines += ablation_section(exp, table, sets)
    if plot and table:
        png = Path(out).with_suffix(".png")
        _plot(table, sets, png)
        lines += [f"![WER per system]({png.name})", ""]
    lines += _sweep_section(exp_dir, sets, Path(out), plot)
    lines += _dist_section(exp_dir, sets, Path(out), plot)
    text = "\n".join(lines)
    atomic_write_text(out, text)
    return text


def _inter_vs_seg_section(table, data_dir: Path, sets: Sequence[str]) -> List[str]:
    """The article's measure: how much larger the interleaved student's relative reduction (over the
    supervised one) is than the segregated one's; and the paired test of interleaved against segregated."""
    from asrkit.decode.bootstrap import seed_utterance_bootstrap

    names = ("student_sup", "student_ssl_inter", "student_ssl_seg")
    rows = []
    for s in sets:
        if not all(n in table and s in table[n] for n in names):
            continue
        sup, inter, seg = (table[n][s] for n in names)
        r_i = 100.0 * (sup.wer - inter.wer) / sup.wer if sup.wer else 0.0
        r_s = 100.0 * (sup.wer - seg.wer) / sup.wer if sup.wer else 0.0
        ratio = f"{100.0 * (r_i / r_s - 1):.0f}%" if r_s > 0 else "- (segregated: no reduction)"
        got = _errors(data_dir, s, seg, inter)
        test = "- (no seed in common)"
        if got is not None:
            d = seed_utterance_bootstrap(got[2], got[3], got[1])
            test = f"{d['rel']:.1f}% [{d['rel_lo']:.1f}, {d['rel_hi']:.1f}] ({_verdict(d)})"
        rows.append(f"| {set_header(s)} | {r_i:.1f}% | {r_s:.1f}% | {ratio} | {test} |")
    if not rows:
        return []
    return ["## Interleaved against segregated", "",
            "Relative WER reductions over the supervised student (from the mean WERs); \"larger by\": how much "
            "larger the interleaved student's reduction is than the segregated one's (the article: 23%); last "
            "column: the interleaved student's relative reduction over the segregated one with its paired 95% "
            "interval, as above.", "",
            "| set | interleaved reduction | segregated reduction | larger by | interleaved over segregated [95% CI] |",
            "|---|---|---|---|---|", *rows, ""]


def read_conditions(data_dir: Path, s: str) -> Dict[str, str]:
    """``{utterance: condition}`` from ``data/<set>/utt2cond`` (empty where there is none)."""
    f = data_dir / s / "utt2cond"
    if not f.exists():
        return {}
    out = {}
    for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(f"{f}:{i}: expected '<utterance> <condition>', got {line!r}")
        out[parts[0]] = parts[1]
    return out


def _condition_section(table, data_dir: Path, sets: Sequence[str]) -> List[str]:
    from asrkit.decode.bootstrap import relative_reduction_gap, seed_utterance_bootstrap

    sup = table.get("student_sup", {})
    rows, claim = [], []
    for name in SSL_SYSTEMS:
        test_conds = {}  # condition -> (e1, e2, words) on the test sets
        for s in sets:
            conds = read_conditions(data_dir, s)
            if not conds or name not in table or s not in table[name] or s not in sup:
                continue
            for c in sorted(set(conds.values()), key=lambda c: (NOISINESS.get(c, 99), c)):
                utts = sorted(u for u, cc in conds.items() if cc == c)
                got = _errors(data_dir, s, sup[s], table[name][s], utts)
                if got is None:
                    continue
                _, words, e1, e2 = got
                if words.sum() == 0:
                    continue
                d = seed_utterance_bootstrap(e1, e2, words)
                w1, w2 = 100.0 * e1.sum(1).mean() / words.sum(), 100.0 * e2.sum(1).mean() / words.sum()
                rows.append(f"| `{name}` | {set_header(s)} | {c} | {len(utts)} | {w1:.2f} | {w2:.2f} | "
                            f"{w1 - w2:.2f} | {d['rel']:.1f}% [{d['rel_lo']:.1f}, {d['rel_hi']:.1f}] | {_verdict(d)} |")
                if not is_dev_set(s):
                    prev = test_conds.get(c)
                    if prev is None or e1.shape[0] == prev[0].shape[0]:  # pool a condition's test utterances
                        test_conds[c] = ((e1, e2, words) if prev is None else
                                         (np.concatenate([prev[0], e1], 1), np.concatenate([prev[1], e2], 1),
                                          np.concatenate([prev[2], words])))
        claim += _claim(name, test_conds, relative_reduction_gap)
    if not rows:
        return []
    return ["## Per condition", "",
            "The reduction on each acoustic condition's utterances (`data/<set>/utt2cond`), over the same seeds "
            "and with the same paired bootstrap as above; WERs in % (means over seeds), \"absolute\" in points.",
            "", "| system | set | condition | utterances | supervised | semi-supervised | absolute | relative "
            "[95% CI] | significant |", "|---|---|---|---|---|---|---|---|---|", *rows, "",
            "Greater improvements on noisier data (the article's claim), judged on the test sets: the relative "
            "reduction on the noisiest condition against the cleanest, the difference's 95% interval from "
            "a bootstrap of each condition's utterances (the seeds drawn once for both).", "", *claim, ""]


def _claim(name: str, conds: Dict[str, tuple], gap_fn) -> List[str]:
    known = [c for c in conds if c in NOISINESS]
    if len({NOISINESS[c] for c in known}) < 2:
        return [f"- `{name}`: cannot be judged: the test sets hold {len(known)} condition(s) of different noise "
                f"({', '.join(sorted(conds)) or 'none'})."]
    clean = min(known, key=lambda c: NOISINESS[c])
    noisy = max(known, key=lambda c: NOISINESS[c])

    def red(c):
        e1, e2, w = conds[c]
        t1, t2 = e1.sum(1).mean(), e2.sum(1).mean()
        return 100.0 * (t1 - t2) / t1 if t1 else 0.0, 100.0 * (t1 - t2) / w.sum()

    (rc, ac), (rn, an) = red(clean), red(noisy)
    g = gap_fn(conds[clean], conds[noisy])
    what = (f"relative reduction {rn:.1f}% on {noisy} against {rc:.1f}% on {clean} (absolute {an:.2f} against "
            f"{ac:.2f} points); difference {g['gap']:.1f} points [{g['gap_lo']:.1f}, {g['gap_hi']:.1f}]")
    if g["gap_lo"] > 0:
        verdict = "holds here"
    elif g["gap_hi"] < 0:
        verdict = "does not hold here: the reduction is smaller on the noisier data"
    else:
        verdict = "not shown here: the difference's interval holds 0"
    return [f"- `{name}`: {verdict} ({what})."]


def _pyplot():
    """matplotlib's pyplot on the Agg backend (no display), imported where a plot is made."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(plt, fig, png: Path) -> None:
    from asrkit.utils.atomic import atomic_path

    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _plot(table: Dict[str, Dict[str, Wer]], sets: Sequence[str], png: Path) -> None:
    plt = _pyplot()
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
    _save_figure(plt, fig, png)


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
        cells = [p.wers[s].cell() if s in p.wers else "" for s in sets]
        lines.append(f"| {p.ratio:.2f} | {p.requested} | {p.unlabelled_hours:.4g} | `{p.system}` | "
                     + " | ".join(cells) + " |")
    lines.append("")
    if plot:
        png = out.with_name(out.stem + "_sweep.png")
        _plot_sweep(points, sets, png)
        lines += [f"![WER against the amount of unlabelled data]({png.name})", ""]
    return lines


def _dist_section(exp_dir: PathLike, sets: Sequence[str], out: Optional[Path] = None,
                  plot: bool = False) -> List[str]:
    runs = collect_dist(exp_dir, sets)
    if not runs:
        return []
    exp = Path(exp_dir)
    lines = ["## Distributed training (stage 15)", "",
             "The interleaved student trained by several processes under torchrun, once per sync mode, and "
             "with N simulated workers in one process (`dist_sim_<mode>_n<N>`, asrkit.distributed.simulate: "
             "each worker its share of the batches and its own GTC residual or BMUF model; equal data, so N "
             "workers make 1/N of the updates), from `comm.json` (rank 0). Sent: the payload each worker contributes over the run (gradients for ddp, "
             "GTC's index/sign codes, BMUF's parameters at each block sync), mean over workers; wire: what ring "
             "collectives put on the network per worker. Compression: the payload dense gradient all-reduce "
             "would have sent in the same steps, over the payload sent. Steps: updates of each worker. Wall "
             "time: the training run of rank 0 (dev evaluation and checkpoints included, decoding not). WER in %.",
             "", "| sync | workers | " + " | ".join(map(set_header, sets)) + " | sent per worker | wire per worker | "
             "compression vs dense all-reduce | steps | wall time (s) |",
             "|---|---|" + "---|" * len(sets) + "---|---|---|---|---|"]
    ref = collect(exp, sets).get("student_ssl_inter")
    if ref:
        steps = fmt_updates(system_updates(exp / "student_ssl_inter"))
        cells = [ref[s].cell() if s in ref else "" for s in sets]
        lines.append("| none: one process (`student_ssl_inter`) | 1 | " + " | ".join(cells)
                     + f" | - | - | - | {steps} | - |")
    for r in runs:
        cells = [r.wers[s].cell() if s in r.wers else "" for s in sets]
        comp = f"x{r.compression:.3g}" if r.compression is not None else "n/a (nothing sent)"
        wall = f"{r.train_seconds:.1f}"
        if r.steps_timed < r.steps:  # a resumed run times only its last launch
            wall += f" (last launch: {r.steps_timed} of {r.steps} steps)"
        lines.append(f"| {r.mode} (`{r.system}`) | {r.world_size} | " + " | ".join(cells)
                     + f" | {fmt_bytes(r.payload_per_worker)} | {fmt_bytes(r.wire_per_worker)} | {comp} | "
                       f"{r.steps} | {wall} |")
    lines.append("")
    sim = [r for r in runs if r.system.startswith(DIST_SIM_PREFIX) and r.wers]
    if plot and out is not None and len({r.world_size for r in sim}) > 1:
        png = out.with_name(out.stem + "_dist.png")
        _plot_dist(sim, sets, png)
        lines += [f"![WER against the number of simulated workers]({png.name})", ""]
    return lines


def _plot_dist(runs: List[DistRun], sets: Sequence[str], png: Path) -> None:
    """WER against the number of simulated workers, one line per sync mode, one panel per set."""
    plt = _pyplot()
    shown = [s for s in sets if any(s in r.wers for r in runs)]
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.5), squeeze=False)
    for ax, s in zip(axes[0], shown):
        for mode in sorted({r.mode for r in runs}, key=lambda m: (DIST_ORDER + (m,)).index(m)):
            xy = sorted((r.world_size, r.wers[s].wer) for r in runs if r.mode == mode and s in r.wers)
            ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", label=mode)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("simulated workers (equal data)")
        ax.set_ylabel("WER (%)")
        ax.set_title(set_header(s))
        ax.grid(alpha=0.3)
        ax.legend()
    _save_figure(plt, fig, png)


def _plot_sweep(points: List[SweepPoint], sets: Sequence[str], png: Path) -> None:
    plt = _pyplot()
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
    _save_figure(plt, fig, png)
