"""Small FST helpers on top of kaldifst (which has no fstrmsymbols, fstproject or fstprint --arcs)."""
from __future__ import annotations

from typing import Iterable, List, Sequence, Set, Tuple

from asrkit.fst import kaldifst


def num_arcs(fst) -> int:
    return sum(fst.num_arcs(s) for s in range(fst.num_states))


def fst_size(fst) -> Tuple[int, int]:
    """(states, arcs)."""
    return fst.num_states, num_arcs(fst)


def is_empty(fst) -> bool:
    return fst.num_states == 0 or fst.start < 0


def arcs(fst):
    """Yield (src, ilabel, olabel, weight, dst) for every arc (Python speed: small FSTs only)."""
    for s in range(fst.num_states):
        for a in kaldifst.ArcIterator(fst, s):
            yield s, a.ilabel, a.olabel, a.weight.value, a.nextstate


def input_labels(fst) -> Set[int]:
    return {a[1] for a in arcs(fst)}


def has_olabel(fst, label: int) -> bool:
    return any(a[2] == label for a in arcs(fst))


def remove_input_symbols(fst, symbols: Iterable[int], num_keep: int):
    """Replace input labels in ``symbols`` by epsilon (Kaldi's ``fstrmsymbols``), all in C++.

    Composes a one-state transducer R on the left: ``t:t`` for the labels 1..``num_keep`` that stay and
    ``<eps>:d`` for each removed ``d``, so ``R o fst`` has the same paths with ``d`` erased from the input.
    ``fst`` must not use input labels above ``num_keep`` other than ``symbols``.
    """
    symbols = sorted(set(int(s) for s in symbols))
    if not symbols:
        return fst
    lines = [f"0 0 {t} {t}" for t in range(1, num_keep + 1)]
    lines += [f"0 0 0 {d}" for d in symbols]
    lines.append("0")
    r = kaldifst.compile("\n".join(lines) + "\n")
    kaldifst.arcsort(r, sort_type="olabel")
    return kaldifst.compose(r, fst)


def output_projection(fst):
    """The acceptor of the output side (epsilons removed, determinized, minimized): for tests/inspection."""
    lines = []
    for line in fst.to_str().splitlines():
        f = line.split()
        if len(f) >= 4:
            f[2] = f[3]
        lines.append(" ".join(f))
    acc = kaldifst.compile("\n".join(lines) + "\n")
    kaldifst.rmepsilon(acc)
    acc = kaldifst.determinize(acc)
    kaldifst.minimize(acc)
    return acc


def enumerate_sequences(acceptor, max_paths: int = 10000) -> List[Tuple[Tuple[int, ...], float]]:
    """All (labels, cost) paths of an acyclic epsilon-free acceptor (raises if it has a cycle)."""
    out: List[Tuple[Tuple[int, ...], float]] = []
    if is_empty(acceptor):
        return out
    zero = float("inf")

    def rec(s: int, labels: Tuple[int, ...], cost: float, on_path: Sequence[int]):
        if len(out) > max_paths:
            raise RuntimeError("too many paths")
        fw = acceptor.final(s).value
        if fw != zero:
            out.append((labels, cost + fw))
        for a in kaldifst.ArcIterator(acceptor, s):
            if a.nextstate in on_path:
                raise ValueError("the acceptor has a cycle: its language is infinite")
            lab = labels + ((a.ilabel,) if a.ilabel != 0 else ())
            rec(a.nextstate, lab, cost + a.weight.value, list(on_path) + [a.nextstate])

    rec(acceptor.start, (), 0.0, [acceptor.start])
    return out
