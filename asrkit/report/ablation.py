"""The report's ablation table: the teacher's and the supervised student's WER as each technique is added.

Runs are found by name under ``exp/``: the teacher group is ``teacher`` (the baseline) and every
``teacher_<what>`` (e.g. ``teacher_specaug``, ``teacher_realign``), the supervised-student group
``student_sup`` and every ``student_sup_<what>``. Nothing is typed in: a row's label is what its recorded
configuration changes against its group's baseline, read from each run's ``config.yaml`` (the ``train``,
``ssl`` and ``data`` sections :class:`asrkit.nnet.train.Trainer` writes; ``best.pt``'s ``train_config``
where there is no yaml). Runtime settings that do not change what a network learns (threads, logging,
checkpoint cadence, device) are left out, and so is the seed of a system trained with several seeds
(its seeds are its own; its config is its first seed's). A ``train`` field missing from an older run's
record takes :class:`~asrkit.nnet.train_config.TrainConfig`'s default, which is the behaviour it was
trained with (new options default to the old behaviour); a key of another section that only one run
records (``data`` is recorded since issue 13) is shown as ``?`` on the other side. Rows are ordered by
how many keys differ, so that techniques added one at a time come before their combinations.

Only runs that exist and are decoded appear; without any run besides the baselines there is no section.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from asrkit.report import SeedWers, headline_order, seed_dirs, set_header

# (baseline dir under exp/, what the group is); variants are <baseline>_<what>
GROUPS = (("teacher", "BLSTM teacher"), ("student_sup", "LSTM student, supervised only"))
SECTIONS = ("train", "ssl", "data")  # "model" is derived from "train" (preset, sizes): not compared twice
# how a run is executed, not what it learns
RUNTIME_KEYS = frozenset({"device", "num_workers", "num_threads", "progress", "tensorboard", "checkpoint_every",
                          "keep_last", "log_every", "dev_max_frames", "amp"})


def group_members(names: Sequence[str], base: str) -> List[str]:
    """The runs of ``base``'s group among ``names`` (the baseline and ``<base>_*``)."""
    return [n for n in names if n == base or n.startswith(base + "_")]


def _train_defaults() -> Dict[str, object]:
    from asrkit.nnet.train_config import TrainConfig

    return {f.name: f.default for f in fields(TrainConfig)}


def _flatten(record: Dict) -> Dict[str, object]:
    """``{key: value}``: train fields by name, the other sections' as ``<section>.<key>``."""
    out: Dict[str, object] = {}
    for sec in SECTIONS:
        for k, v in (record.get(sec) or {}).items():
            if k not in RUNTIME_KEYS:
                out[k if sec == "train" else f"{sec}.{k}"] = v
    return out


def read_run_config(sys_dir: Path) -> Optional[Dict[str, object]]:
    """The recorded configuration of a system (its first seed's where it has several, without the seed),
    flattened (:func:`_flatten`), or None where nothing is recorded."""
    runs = seed_dirs(sys_dir)
    d = runs[0][1]
    record = None
    if (d / "config.yaml").exists():
        record = yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8")) or {}
    elif (d / "best.pt").exists():
        from asrkit.nnet.checkpoint import load_checkpoint

        record = {"train": load_checkpoint(d / "best.pt", map_location="cpu").get("train_config") or {}}
    if record is None:
        return None
    flat = _flatten(record)
    for k, v in _train_defaults().items():  # an older record: the defaults it was trained with
        if k not in RUNTIME_KEYS:
            flat.setdefault(k, v)
    if runs[0][0]:  # several seeds
        flat.pop("seed", None)
    return flat


def _fmt(v) -> str:
    if v is UNRECORDED:
        return "?"
    if isinstance(v, list):
        return " + ".join(map(str, v))
    return "none" if v is None else str(v)


class _Unrecorded:
    """A key one run's record lacks (e.g. ``data``, recorded since issue 13): shown as ``?``, not hidden,
    for a teacher realigned by the first differs from it only there."""

    def __repr__(self) -> str:
        return "UNRECORDED"


UNRECORDED = _Unrecorded()


def config_diff(base: Dict[str, object], other: Dict[str, object]) -> List[Tuple[str, object, object]]:
    """``(key, baseline value, value)`` for every key whose value differs, sorted by key; a key only one
    side records has :data:`UNRECORDED` on the other."""
    out = []
    for k in sorted(set(base) | set(other)):
        a, b = base.get(k, UNRECORDED), other.get(k, UNRECORDED)
        if k == "seed" and UNRECORDED in (a, b):  # a system of several seeds against one of one seed
            continue
        if a != b:
            out.append((k, a, b))
    return out


def _dirs_only(a, b) -> Optional[Tuple[str, str]]:
    """``("exp/senone/", "exp/senone_realign/")`` where two data paths (or equal-length path lists) name the
    same files in other folders, one folder each side (``("?", folder)`` where one side is unrecorded); None
    otherwise."""
    if UNRECORDED in (a, b):
        known = b if a is UNRECORDED else a
        files = known if isinstance(known, list) else [known]
        if len(files) != 1:  # several manifests (e.g. train_sup and its speed-perturbed copies): the list says
            return None      # what was trained on, its folder would not
        ds = {str(Path(x).parent) for x in files if isinstance(x, str)}
        if len(ds) != 1:
            return None
        d = ds.pop() + "/"
        return ("?", d) if a is UNRECORDED else (d, "?")
    xs, ys = (a, b) if isinstance(a, list) and isinstance(b, list) else ([a], [b])
    if len(xs) != len(ys) or not all(isinstance(v, str) for v in xs + ys):
        return None
    if any(Path(x).name != Path(y).name for x, y in zip(xs, ys)):
        return None
    da, db = {str(Path(x).parent) for x in xs}, {str(Path(y).parent) for y in ys}
    if len(da) != 1 or len(db) != 1:
        return None
    return da.pop() + "/", db.pop() + "/"


def _label(diff: List[Tuple[str, object, object]]) -> str:
    """``key: old → new`` joined by "; "; data paths that only moved folder are shown as the folders,
    any keys with the same change together (``data.dev_cuts, data.train_cuts: exp/senone/ → exp/senone_realign/``)."""
    if not diff:
        return "no difference in the recorded config"
    changes: Dict[Tuple[str, str], List[str]] = {}
    for k, a, b in diff:
        moved = _dirs_only(a, b) if k.startswith("data.") else None
        changes.setdefault(moved or (_fmt(a), _fmt(b)), []).append(k)
    return "; ".join(f"{', '.join(keys)}: {a} → {b}" for (a, b), keys in changes.items())


def ablation_rows(exp_dir: Path, table: Dict[str, Dict[str, SeedWers]], sets: Sequence[str]) -> List[str]:
    """The table's rows (markdown), every group's baseline first; empty when no group has a variant."""
    names = list(table)
    groups = [(base, what, group_members(names, base)) for base, what in GROUPS]
    if not any(len([m for m in members if m != base]) for base, _, members in groups):
        return []
    rows = []
    for base, what, members in groups:
        base_cfg = read_run_config(exp_dir / base) if base in table else None
        ordered = []
        for name in members:
            if name == base:
                ordered.append((-1, name, "baseline"))
                continue
            cfg = read_run_config(exp_dir / name)
            if base not in table:
                label = f"no baseline `{base}` to compare with"
                n = 0
            elif base_cfg is None or cfg is None:
                label = "config not recorded (`config.yaml`, `best.pt`)"
                n = 0
            else:
                diff = config_diff(base_cfg, cfg)
                label, n = _label(diff), len(diff)
            ordered.append((n, name, label))
        for _, name, label in sorted(ordered):
            cells = []
            for s in sets:
                w = table[name].get(s)
                ref = table.get(base, {}).get(s) if name != base else None
                if w is None:
                    cells.append("")
                elif ref is not None and ref.wer > 0:
                    cells.append(f"{w.cell()} ({100.0 * (w.wer - ref.wer) / ref.wer:+.1f}%)")
                else:
                    cells.append(w.cell())
            rows.append(f"| {what} | `{name}` | {label} | " + " | ".join(cells) + " |")
    return rows


def ablation_section(exp_dir, table: Dict[str, Dict[str, SeedWers]], sets: Sequence[str]) -> List[str]:
    """The report's section (markdown lines), or none (module doc)."""
    sets = headline_order(sets)
    rows = ablation_rows(Path(exp_dir), table, sets)
    if not rows:
        return []
    return ["## Ablation: the teacher and the supervised student as each technique is added", "",
            "Each run against its group's baseline (`teacher`, `student_sup`): what its recorded configuration "
            "changes (`config.yaml`; runtime settings left out; `?`: not recorded, a run older than the "
            "record of its data) and its WER in %, with the relative change against the baseline in brackets. "
            "Rows with fewer changes come first.", "",
            "| network | run | differs from the baseline | " + " | ".join(map(set_header, sets)) + " |",
            "|---|---|---|" + "---|" * len(sets), *rows, ""]
