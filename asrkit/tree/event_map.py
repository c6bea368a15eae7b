"""Kaldi event maps in Python: constant (CE), split (SE) and table (TE) nodes, and the context tree.

Keys: ``0..N-1`` are the context positions, ``-1`` (``PDF_CLASS_KEY``) the pdf-class. Every traversal is
iterative (trees can be deeper than Python's recursion limit). Serialisation to Kaldi's binary layout and
conversion to ``kaldi_hmm_gmm.ContextDependency`` are :mod:`asrkit.tree.kaldi_format`'s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from asrkit.tree.stats import PDF_CLASS_KEY, frame_contexts


@dataclass(eq=False)
class ConstantNode:
    """``CE answer``: a leaf."""

    pdf: int


@dataclass(eq=False)
class SplitNode:
    """``SE key {yes-set} { yes no }``: go to ``yes`` when the value of ``key`` is in ``yes_set``."""

    key: int
    yes_set: Tuple[int, ...]
    yes: "Node"
    no: "Node"

    def __post_init__(self) -> None:
        self.yes_set = tuple(sorted(set(int(v) for v in self.yes_set)))


@dataclass(eq=False)
class TableNode:
    """``TE key size ( ... )``: ``table[value]`` (``None`` = NULL, no answer)."""

    key: int
    table: List[Optional["Node"]] = field(default_factory=list)


Node = Union[ConstantNode, SplitNode, TableNode]


def _children(node: Node) -> List[Node]:
    if isinstance(node, SplitNode):
        return [node.yes, node.no]
    if isinstance(node, TableNode):
        return [c for c in node.table if c is not None]
    return []


def iter_nodes(root: Node):
    """Pre-order traversal (a node shared at several places is visited at each)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(_children(node)))


def leaf_ids(root: Node) -> List[int]:
    return sorted({n.pdf for n in iter_nodes(root) if isinstance(n, ConstantNode)})


def map_leaves(root: Node, mapping: Dict[int, int]) -> Node:
    """A copy of the map with each leaf's answer replaced by ``mapping[answer]`` (iterative)."""
    memo: Dict[int, Node] = {}
    order = list(iter_nodes(root))
    for node in reversed(order):  # children are rebuilt before parents
        if id(node) in memo:
            continue
        if isinstance(node, ConstantNode):
            memo[id(node)] = ConstantNode(int(mapping[node.pdf]))
        elif isinstance(node, SplitNode):
            memo[id(node)] = SplitNode(node.key, node.yes_set, memo[id(node.yes)], memo[id(node.no)])
        else:
            memo[id(node)] = TableNode(node.key, [None if c is None else memo[id(c)] for c in node.table])
    return memo[id(root)]


@dataclass(eq=False)
class ContextTree:
    """A phonetic decision tree: Kaldi's ``ContextDependency`` (N, P and the ``ToPdf`` event map)."""

    context_width: int
    central_position: int
    root: Node

    @property
    def num_pdfs(self) -> int:
        """Highest leaf id + 1 (Kaldi's ``NumPdfs``); leaves are numbered 0..num_pdfs-1."""
        ids = leaf_ids(self.root)
        return (ids[-1] + 1) if ids else 0

    def _value(self, key: int, phones: Sequence[int], pdf_class: int) -> int:
        if key == PDF_CLASS_KEY:
            return pdf_class
        if 0 <= key < self.context_width:
            return int(phones[key])
        raise KeyError(f"tree asks about key {key}, which a context of width {self.context_width} lacks")

    def map(self, phones: Sequence[int], pdf_class: int) -> int:
        """The pdf (leaf) of one context: ``phones`` has ``context_width`` entries (0 = none).

        Raises ``KeyError`` where the tree has no answer (Kaldi's ``Compute`` returns false there).
        """
        if len(phones) != self.context_width:
            raise ValueError(f"context {tuple(phones)} should have {self.context_width} phones")
        node = self.root
        while True:
            if isinstance(node, ConstantNode):
                return node.pdf
            v = self._value(node.key, phones, pdf_class)
            if isinstance(node, SplitNode):
                node = node.yes if v in node.yes_set else node.no
            else:
                nxt = node.table[v] if 0 <= v < len(node.table) else None
                if nxt is None:
                    raise KeyError(f"no pdf for context {tuple(phones)}, pdf-class {pdf_class}")
                node = nxt

    def map_batch(self, contexts: np.ndarray, pdf_classes: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`map`: contexts int [M, N], pdf_classes int [M] -> pdfs int32 [M], -1 where
        the tree has no answer."""
        contexts = np.asarray(contexts, dtype=np.int64).reshape(-1, self.context_width)
        pdf_classes = np.asarray(pdf_classes, dtype=np.int64).reshape(-1)
        out = np.full(len(contexts), -1, dtype=np.int32)
        stack = [(self.root, np.arange(len(contexts)))]
        while stack:
            node, idx = stack.pop()
            if len(idx) == 0:
                continue
            if isinstance(node, ConstantNode):
                out[idx] = node.pdf
                continue
            if node.key == PDF_CLASS_KEY:
                vals = pdf_classes[idx]
            elif 0 <= node.key < self.context_width:
                vals = contexts[idx, node.key]
            else:
                raise KeyError(f"tree asks about key {node.key}")
            if isinstance(node, SplitNode):
                yes = np.isin(vals, np.asarray(node.yes_set, dtype=np.int64))
                stack.append((node.no, idx[~yes]))
                stack.append((node.yes, idx[yes]))
            else:
                for v in np.unique(vals).tolist():
                    if 0 <= v < len(node.table) and node.table[v] is not None:
                        stack.append((node.table[v], idx[vals == v]))
        return out

    def frame_pdfs(self, phones: np.ndarray, pdf_classes: np.ndarray, *, phone_starts=None,
                   utt_lengths=None) -> np.ndarray:
        """Per-frame pdfs (senone targets) from per-frame phone ids and pdf-classes, the contexts taken
        as :func:`asrkit.tree.stats.frame_contexts` takes them; -1 for frames of phone 0 or without an
        answer."""
        phones = np.asarray(phones).reshape(-1)
        ctx = frame_contexts(phones, context_width=self.context_width,
                             central_position=self.central_position, phone_starts=phone_starts,
                             utt_lengths=utt_lengths)
        out = self.map_batch(ctx, pdf_classes)
        out[phones == 0] = -1
        return out
