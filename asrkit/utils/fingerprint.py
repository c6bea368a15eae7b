"""Done markers that remember what made the outputs: a stage's options and the digests of its inputs.

A stage program builds a fingerprint of what it was asked (:func:`fingerprint`), then asks
:func:`guard` about its outputs before working:

* not done: work (and :meth:`Guard.stamp` the markers after);
* done from the same fingerprint: the program's own skip applies;
* done from another one: :class:`StaleOutputError` names every option and input that changed, and
  the program stops non-zero, unless ``force`` is given, in which case it redoes the work;
* done under a marker without a fingerprint (written by an older asrkit): accepted, with a note.

Input digests are sha256 of the content (a directory: of each regular file directly in it), so a
touched but unchanged file is not a change, and an edited one is, under the same name.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from asrkit.utils.atomic import done_marker, is_done, mark_done, up_to_date

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]
# Options that change how, not what: parallelism, logging, the redo switch itself.
NOT_FINGERPRINTED = frozenset({"verbose", "force", "overwrite", "no_progress", "nj", "num_jobs", "num_threads"})


class StaleOutputError(RuntimeError):
    """Outputs marked done were made from other inputs or options."""


def digest(path: PathLike) -> str:
    """sha256 of a file's content; of a directory, over the names and digests of its regular files
    (not recursive); "missing" for a path that does not exist."""
    p = Path(path)
    if p.is_dir():
        h = hashlib.sha256()
        for child in sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")):
            h.update(f"{child.name}\0{digest(child)}\n".encode())
        return "dir:" + h.hexdigest()
    if not p.exists():
        return "missing"
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(options: Mapping[str, object],
                inputs: Mapping[str, Union[None, PathLike, Sequence[PathLike]]]) -> Dict[str, dict]:
    """``{"options": {name: value}, "inputs": {name: {"path": p, "sha256": d}}}``; an input given as
    a list becomes ``name[0]``, ``name[1]``...; ``None`` inputs are left out."""
    opts = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in sorted(options.items())
            if k not in NOT_FINGERPRINTED}
    ins: Dict[str, dict] = {}
    for name, value in inputs.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                ins[f"{name}[{i}]"] = {"path": str(v), "sha256": digest(v)}
        else:
            ins[name] = {"path": str(value), "sha256": digest(value)}
    return {"options": json.loads(json.dumps(opts, default=str)), "inputs": ins}


def options_of(args: argparse.Namespace, drop: Iterable[str] = ()) -> Dict[str, object]:
    """A program's parsed options as fingerprint options (outputs and ``drop`` left out)."""
    skip = set(drop)
    return {k: v for k, v in vars(args).items() if k not in skip}


def changes(old: Mapping[str, dict], new: Mapping[str, dict]) -> List[str]:
    """What differs, one line each: options first, then inputs."""
    out = []
    oo, no = old.get("options", {}), new.get("options", {})
    for k in sorted(set(oo) | set(no)):
        if oo.get(k) != no.get(k):
            out.append(f"option --{k.replace('_', '-')}: {oo.get(k, '(not given)')!r} -> {no.get(k, '(not given)')!r}")
    oi, ni = old.get("inputs", {}), new.get("inputs", {})
    for k in sorted(set(oi) | set(ni)):
        a, b = oi.get(k), ni.get(k)
        if a == b:
            continue
        if a is None or b is None:
            out.append(f"input {k}: {'(none)' if a is None else a['path']} -> {'(none)' if b is None else b['path']}")
        elif a["path"] != b["path"]:
            same = " (same content)" if a["sha256"] == b["sha256"] else ""
            out.append(f"input {k}: {a['path']} -> {b['path']}{same}")
        else:
            out.append(f"input {k}: {b['path']} changed since (content differs)")
    return out


def read_marker(path: PathLike) -> Optional[dict]:
    """The fingerprint in ``path``'s done marker; None for a marker without one."""
    text = done_marker(path).read_text(errors="replace").strip()
    if not text:
        return None
    try:
        return json.loads(text)["fingerprint"]
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Guard:
    what: str
    outputs: List[Path]
    fp: Dict[str, dict]
    done: bool = False      # every output done, from this fingerprint (or an unfingerprinted marker)
    legacy: bool = False    # done under a marker without a fingerprint: accepted unchecked
    redo: bool = False      # done from other inputs, redone under force
    changed: List[str] = field(default_factory=list)

    def stamp(self) -> None:
        """Record the fingerprint in every output's marker (after the work succeeded)."""
        if self.legacy and not self.redo:
            return  # not redone: nothing vouches that the old outputs came from these inputs
        text = json.dumps({"fingerprint": self.fp}, indent=1, sort_keys=True) + "\n"
        for p in self.outputs:
            if is_done(p):
                m = done_marker(p)
                if m.read_text(errors="replace") == text:
                    continue  # unchanged: keep its time (make-style checks compare against it)
                tmp = m.with_name(m.name + ".tmp")
                tmp.write_text(text)
                os.replace(tmp, m)


def guard(what: str, outputs: Sequence[PathLike], fp: Dict[str, dict], force: bool = False) -> Guard:
    """See the module docstring. ``what`` names the outputs in messages ("manifests of dev")."""
    g = Guard(what, [Path(p) for p in outputs], fp)
    if not all(is_done(p) for p in g.outputs):
        return g
    stored = [(p, read_marker(p)) for p in g.outputs]
    g.legacy = any(s is None for _, s in stored)
    for p, s in stored:
        if s is not None and s != fp:
            g.changed = changes(s, fp) or ["(the fingerprint format changed)"]
            break
    if g.changed:
        detail = "; ".join(g.changed)
        if force:
            log.warning(f"{what}: redoing (--force): made from other inputs or options: {detail}")
            g.redo = True
            return g
        raise StaleOutputError(
            f"{what}: done, but from other inputs or options: {detail}. Re-run with --force (a recipe: "
            f"--force true) to redo it and what follows, or give the inputs it was made from")
    if g.legacy:
        log.warning(f"{what}: done marker(s) without a fingerprint (an older asrkit wrote them): accepted "
                    f"without checking the inputs; --force redoes them")
    g.done = True
    return g


def fresh(path: PathLike, fp: Dict[str, dict]) -> Tuple[bool, List[str]]:
    """make's rule with a memory, for outputs that are simply remade when their inputs change (scores,
    averaged models): ``(True, [])`` when ``path`` is done from fingerprint ``fp``, or done under a marker
    without one (an older asrkit) and newer than every input of ``fp``; else ``(False, what changed)``.
    After remaking ``path``, :func:`stamp` records ``fp``."""
    if not is_done(path):
        return False, []
    old = read_marker(path)
    if old is None:
        return up_to_date(path, [v["path"] for v in fp["inputs"].values()]), []
    if old == fp:
        return True, []
    return False, changes(old, fp) or ["(the fingerprint format changed)"]


def stamp(path: PathLike, fp: Dict[str, dict]) -> None:
    """Mark ``path`` done with ``fp`` in its marker (after the work succeeded)."""
    mark_done(path)
    Guard(str(path), [Path(path)], fp).stamp()
