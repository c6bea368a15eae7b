"""The recipe's report (stage 16): WER tables, semi-supervised gains and a plot, from the decode dirs.

Everything is read from files the stages wrote (``exp/<system>/decode_<set>/best_wer`` and ``hyp.txt``,
``data/<set>/text``), never typed in. Systems that have not been trained yet are simply absent.

Comparisons, for each set:
* relative WER reduction of each semi-supervised student over the supervised-only one, with the paired
  bootstrap of Bisani and Ney (kaldialign): the 95% intervals of both systems and the probability that
  the semi-supervised one is better; a difference whose intervals overlap is reported as "none";
* the share of the supervised-to-oracle gap that it recovers (when the oracle student exists).
"""
from __future__ import annotations

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
    out: Dict[str, Dict[str, Wer]] = {}
    for name in names:
        row = {s: w for s in sets if (w := read_wer(exp / name / f"decode_{s}")) is not None}
        if row:
            out[name] = row
    return out


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


def _label(name: str) -> str:
    return dict(SYSTEMS).get(name, name)


def write_report(exp_dir: PathLike, data_dir: PathLike, sets: Sequence[str], out: PathLike,
                 title: str = "Results", plot: bool = True) -> str:
    """Write RESULTS.md (and RESULTS.png beside it); returns the markdown."""
    from asrkit.utils.atomic import atomic_write_text

    table = collect(exp_dir, sets)
    lines = [f"# {title}", "", "Written by `python -m asrkit.bin.report` from the decode dirs under "
             f"`{exp_dir}/`; WER in %, best LM weight on dev, the same weight on the test sets.", ""]
    lines += ["| system | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for name, row in table.items():
        cells = [f"{row[s].wer:.2f}" if s in row else "" for s in sets]
        lines.append(f"| {_label(name)} (`{name}`) | " + " | ".join(cells) + " |")
    lines.append("")
    sup = table.get("student_sup", {})
    oracle = table.get("student_oracle", {})
    rows = []
    for name in SSL_SYSTEMS:
        for s in sets:
            if name not in table or s not in table[name] or s not in sup:
                continue
            a, b = sup[s], table[name][s]
            rel = 100.0 * (a.wer - b.wer) / a.wer if a.wer > 0 else 0.0
            boot = paired_bootstrap(Path(data_dir) / s / "text", a.decode_dir / "hyp.txt", b.decode_dir / "hyp.txt")
            s1, s2 = boot["system1"], boot["system2"]
            overlap = not (s2["ci95max"] < s1["ci95min"] or s1["ci95max"] < s2["ci95min"])
            gap = ""
            if s in oracle and a.wer != oracle[s].wer:
                gap = f"{100.0 * (a.wer - b.wer) / (a.wer - oracle[s].wer):.0f}%"
            verdict = "none (intervals overlap)" if overlap else f"{rel:.1f}%"
            rows.append(f"| `{name}` | {s} | {a.wer:.2f} [{100 * s1['ci95min']:.2f}, {100 * s1['ci95max']:.2f}] | "
                        f"{b.wer:.2f} [{100 * s2['ci95min']:.2f}, {100 * s2['ci95max']:.2f}] | {rel:.1f}% | "
                        f"{verdict} | {boot['p_s2_improv_over_s1']:.3f} | {gap} |")
    if rows:
        lines += ["## Semi-supervised students against the supervised-only student", "",
                  "95% bootstrap intervals (Bisani and Ney, 2,000 replications); a reduction whose intervals "
                  "overlap is reported as none. Gap recovered: the share of the supervised-to-oracle WER gap.", "",
                  "| system | set | supervised WER [95% CI] | semi-supervised WER [95% CI] | relative reduction | "
                  "significant reduction | P(better) | gap recovered |",
                  "|---|---|---|---|---|---|---|---|", *rows, ""]
    if plot and table:
        png = Path(out).with_suffix(".png")
        _plot(table, sets, png)
        lines += [f"![WER per system]({png.name})", ""]
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
    fig.savefig(png, dpi=100)
    plt.close(fig)
