"""Monophone trees: each phone's each pdf-class its own leaf (or shared within given phone sets).

The layout is Kaldi's ``MonophoneContextDependency`` / ``MonophoneContextDependencyShared``: a table on
the central phone, then a table on the pdf-class. With ``context_width=3`` the same map is wrapped in a
triphone-shaped tree (N=3, P=1) that ignores the context: a stand-in for a real triphone tree. The
``ContextDependency`` of the same layout, built by kaldi_hmm_gmm, is :func:`asrkit.hmm.monophone_tree`.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

from asrkit.tree.event_map import ConstantNode, ContextTree, TableNode
from asrkit.tree.stats import PDF_CLASS_KEY

NumPdfClasses = Union[int, Mapping[int, int], Sequence[int]]


def num_pdf_classes_of(spec: NumPdfClasses, phone: int) -> int:
    """``spec`` is an int (same for all), a mapping phone -> n, or a list indexed by phone."""
    if isinstance(spec, int):
        return spec
    if isinstance(spec, Mapping):
        if phone not in spec:
            raise KeyError(f"no number of pdf-classes given for phone {phone}")
        return int(spec[phone])
    if phone >= len(spec):
        raise KeyError(f"no number of pdf-classes given for phone {phone}")
    return int(spec[phone])


def monophone_context_tree(phones: Optional[Sequence[int]] = None, num_pdf_classes: NumPdfClasses = 1, *,
                   shared_sets: Optional[Sequence[Sequence[int]]] = None,
                   context_width: int = 1, central_position: Optional[int] = None) -> ContextTree:
    """A context-independent tree. Give either ``phones`` (each its own leaves) or ``shared_sets`` (each
    set's phones share one leaf per pdf-class; a set may have one phone). Leaves are numbered in the
    order of the phones / sets, then pdf-class, from 0, as Kaldi does."""
    if shared_sets is None:
        if phones is None:
            raise ValueError("monophone_context_tree: give phones or shared_sets")
        shared_sets = [[p] for p in phones]
    elif phones is not None:
        raise ValueError("monophone_context_tree: give phones or shared_sets, not both")
    p = (context_width - 1) // 2 if central_position is None else central_position
    all_phones = [int(ph) for s in shared_sets for ph in s]
    if len(set(all_phones)) != len(all_phones) or (all_phones and min(all_phones) <= 0):
        raise ValueError("monophone_context_tree: phones must be distinct and > 0")
    table: list = [None] * (max(all_phones) + 1 if all_phones else 0)
    next_leaf = 0
    for s in shared_sets:
        n = max(num_pdf_classes_of(num_pdf_classes, int(ph)) for ph in s)
        sub = TableNode(PDF_CLASS_KEY, [ConstantNode(next_leaf + j) for j in range(n)])
        next_leaf += n
        for ph in s:
            table[int(ph)] = sub
    return ContextTree(context_width, p, TableNode(p, table))
