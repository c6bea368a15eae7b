"""Greedy decision-tree building on Gaussian statistics, as Kaldi's ``build-tree`` (``BuildTree``).

1. **Stub** (``GetStubMap``): a table on the central phone; each root of the roots spec gets one leaf
   ("shared": all pdf-classes of its phones share the root, the pdf-class question may split them) or one
   leaf per pdf-class ("not-shared"). "not-split" roots (silence, by default) are never split: their
   statistics are left out of splitting (Kaldi's ``FilterStatsByKey``) and every pdf-class keeps one leaf.
2. **Splitting** (``SplitDecisionTree``): every leaf knows its best question (all keys, all questions,
   evaluated at once: per-value aggregated statistics ``A = onehot @ X``, yes-statistics ``Y = Q @ A`` for
   the block-diagonal question matrix ``Q``, no-statistics ``total - Y``, gain
   ``objf(Y) + objf(no) - objf(total)``); the globally best split among all leaves (priority queue) is
   done while its gain exceeds ``thresh`` and the leaf count is below ``max_leaves``. A split is allowed
   only if both sides have at least ``min_count`` frames (asrkit's occupancy guard; Kaldi has none).
   The "yes" child keeps the leaf's id and the "no" child takes the next one, as in Kaldi.
3. **Clustering** (``ClusterEventMapRestrictedByMap``): within each root, leaves are merged bottom-up
   while the cheapest merge costs less than ``cluster_thresh``. Kaldi's build-tree default
   ``--cluster-thresh=-1`` sets it to the smallest split gain taken in step 2; 0 disables clustering.
4. **Renumbering** (``RenumberEventMap``): the leaves that remain are numbered 0..num_pdfs-1 in the order
   of their ids.

Defaults follow build-tree: ``thresh=300`` (``--thresh``), ``cluster_thresh=-1`` and
``var_floor=0.01`` (acc-tree-stats' ``--var-floor``); ``max_leaves`` 3000 is the senone target of the
system; ``min_count`` 100 frames is asrkit's own.
"""
from __future__ import annotations

import heapq
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from asrkit.utils.blas import blas_threads
from asrkit.tree.event_map import ConstantNode, ContextTree, Node, SplitNode, TableNode, map_leaves
from asrkit.tree.mono import NumPdfClasses, num_pdf_classes_of
from asrkit.tree.questions import Questions
from asrkit.tree.stats import DEFAULT_VAR_FLOOR, PDF_CLASS_KEY, TreeStats, gauss_objf

log = logging.getLogger(__name__)


@dataclass
class RootSpec:
    """One line of Kaldi's roots.txt: ``[not-]shared [not-]split phone...``."""

    phones: Tuple[int, ...]
    shared: bool = True
    split: bool = True

    def __post_init__(self) -> None:
        self.phones = tuple(int(p) for p in self.phones)
        if not self.phones:
            raise ValueError("RootSpec: empty phone list")
        if self.split and not self.shared:
            raise ValueError(f"root {self.phones}: splitting a not-shared root is not supported (as in Kaldi)")


def read_roots(path_or_text: Union[str, os.PathLike]) -> List[RootSpec]:
    """Parse Kaldi's roots.int (``shared split 1 2 3`` / ``not-shared not-split 4``), a path or text."""
    p = Path(path_or_text) if not isinstance(path_or_text, str) or "\n" not in path_or_text else None
    is_file = p is not None and p.exists()
    text, where = (p.read_text(), str(p)) if is_file else (str(path_or_text), "<text>")
    roots = []
    for n, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 3 or f[0] not in ("shared", "not-shared") or f[1] not in ("split", "not-split"):
            raise ValueError(f"{where}:{n}: expected '[not-]shared [not-]split phone...', got {line!r}")
        try:
            roots.append(RootSpec(tuple(int(x) for x in f[2:]), f[0] == "shared", f[1] == "split"))
        except ValueError as e:
            raise ValueError(f"{where}:{n}: {e}") from None
    return roots


def default_roots(phones: Sequence[int], silence_phones: Sequence[int] = ()) -> List[RootSpec]:
    """One shared, split root per phone; each silence phone its own not-shared, not-split root."""
    sil = set(int(p) for p in silence_phones)
    return [RootSpec((int(p),), shared=int(p) not in sil, split=int(p) not in sil)
            for p in sorted(set(int(p) for p in phones) | sil)]


@dataclass
class TreeBuildConfig:
    max_leaves: int = 3000  # <= 0: no limit (then thresh alone stops splitting)
    thresh: float = 300.0  # minimum likelihood gain of a split (build-tree --thresh)
    min_count: float = 100.0  # minimum frames on each side of a split
    cluster_thresh: float = -1.0  # < 0: the smallest split gain; 0: no post-clustering
    var_floor: float = DEFAULT_VAR_FLOOR


@dataclass
class BuildResult:
    tree: ContextTree
    num_leaves: int  # pdfs of the final tree
    num_leaves_split: int  # leaves after splitting, before clustering
    num_splits: int
    objf_gain: float  # total likelihood gain of the splits
    cluster_objf_change: float  # (<= 0) likelihood change of the post-clustering
    smallest_split: float
    cluster_thresh: float
    data_limited: bool  # stopped before max_leaves because no admissible split was left
    pdf_counts: np.ndarray  # frames per pdf (all statistics, silence included)
    total_count: float
    seconds: float
    log_lines: List[str] = field(default_factory=list)


class _WLeaf:
    """A working node: a leaf (``key is None``) or a split with ``yes`` / ``no`` children."""

    __slots__ = ("id", "rows", "gain", "key", "yes_set", "yes", "no", "root")

    def __init__(self, leaf_id: int, rows: np.ndarray, root: int) -> None:
        self.id, self.rows, self.root = leaf_id, rows, root
        self.gain, self.key, self.yes_set, self.yes, self.no = -np.inf, None, None, None, None


class _Evaluator:
    """All candidate questions of all keys, evaluated for a set of rows with two matrix products."""

    def __init__(self, stats: TreeStats, questions: Questions, cfg: TreeBuildConfig) -> None:
        n = stats.context_width
        self.cfg = cfg
        m = stats.num_contexts
        # [ncontexts, count, sums, sumsqs]
        self.X = np.concatenate([np.ones((m, 1)), stats.stacked()], axis=1)
        self.dim = stats.dim
        keys = list(range(n)) + [PDF_CLASS_KEY]
        vals, offsets, sizes, qrows, qkeys, qsets = [], [], [], [], [], []
        off = 0
        for k in keys:
            v = stats.pdf_classes if k == PDF_CLASS_KEY else stats.contexts[:, k]
            qs = questions.for_key(k)
            vmax = max([int(v.max()) if m else 0] + [max(q) for q in qs])
            vals.append(v.astype(np.int64))
            offsets.append(off)
            sizes.append(vmax + 1)
            for q in qs:
                qrows.append([off + x for x in q])
                qkeys.append(k)
                qsets.append(q)
            off += vmax + 1
        self.keys, self.vals = keys, vals
        self.codes = np.stack([vals[i] + offsets[i] for i in range(len(keys))], axis=1)  # [M, K]
        self.vtot = off
        # one 0/1 question matrix per key (the block-diagonal Q of the module doc, block by block)
        self.spans = [(offsets[i], offsets[i] + sizes[i]) for i in range(len(keys))]
        self.Qk = []
        for i, k in enumerate(keys):
            rows_k = [r for r, kk in zip(qrows, qkeys) if kk == k]
            qm = np.zeros((len(rows_k), sizes[i]))
            for j, r in enumerate(rows_k):
                qm[j, np.asarray(r, dtype=np.int64) - offsets[i]] = 1.0
            self.Qk.append(qm)
        self.qkeys, self.qsets = qkeys, qsets
        self.key_index = {k: i for i, k in enumerate(keys)}
        log.debug("tree questions: %d over keys %s, %d values", len(qsets), keys, off)

    def objf(self, a: np.ndarray) -> np.ndarray:
        d = self.dim
        return gauss_objf(a[..., 1], a[..., 2:2 + d], a[..., 2 + d:], self.cfg.var_floor)

    def best_split(self, rows: np.ndarray) -> Tuple[float, Optional[int], Optional[Tuple[int, ...]]]:
        n = len(rows)
        if n < 2 or len(self.qsets) == 0:
            return -np.inf, None, None
        xl = self.X[rows]
        total = xl.sum(0)
        if total[1] < 2 * self.cfg.min_count:
            return -np.inf, None, None
        agg = self._aggregate(rows, xl)  # [V, 2 + 2D] per value of each key
        yes = np.concatenate([qk @ agg[a:b] for qk, (a, b) in zip(self.Qk, self.spans)])  # [Q, 2 + 2D]
        no = total[None, :] - yes
        ok = (yes[:, 0] > 0.5) & (no[:, 0] > 0.5)
        mc = max(self.cfg.min_count, 1e-10)
        ok &= (yes[:, 1] >= mc) & (no[:, 1] >= mc)
        if not ok.any():
            return -np.inf, None, None
        idx = np.flatnonzero(ok)
        gain = self.objf(yes[idx]) + self.objf(no[idx]) - float(self.objf(total))
        j = int(np.argmax(gain))  # first best: keys in order 0..N-1, -1; questions in given order
        qi = int(idx[j])
        return float(gain[j]), self.qkeys[qi], self.qsets[qi]

    def _aggregate(self, rows: np.ndarray, xl: np.ndarray) -> np.ndarray:
        """Statistics summed per value of every key: [V, F] (no BLAS: bincount for small leaves, one
        sort and ``np.add.reduceat`` per key for large ones)."""
        n, f = xl.shape
        codes = self.codes[rows]
        if n <= 512:
            kk = codes.shape[1]
            idx = (codes[:, :, None] * f + np.arange(f)).reshape(-1)
            w = np.broadcast_to(xl[:, None, :], (n, kk, f)).reshape(-1)
            return np.bincount(idx, weights=w, minlength=self.vtot * f).reshape(self.vtot, f)
        agg = np.zeros((self.vtot, f))
        for k in range(codes.shape[1]):
            c = codes[:, k]
            o = np.argsort(c, kind="stable")
            sc = c[o]
            st = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
            agg[sc[st]] = np.add.reduceat(xl[o], st, axis=0)
        return agg

    def partition(self, rows: np.ndarray, key: int, yes_set: Tuple[int, ...]):
        v = self.vals[self.key_index[key]][rows]
        yes = np.isin(v, np.asarray(yes_set, dtype=np.int64))
        return rows[yes], rows[~yes]


def _cluster_bottom_up(acc: np.ndarray, thresh: float, objf) -> Tuple[np.ndarray, float]:
    """Kaldi's ClusterBottomUp: merge the closest pair while its cost < thresh.

    ``acc`` [n, 2+2D] summed statistics per leaf. Returns (representative index per leaf, objf change)."""
    n = len(acc)
    acc = acc.copy()
    rep = np.arange(n)
    if n < 2:
        return rep, 0.0
    own = objf(acc)
    dist = np.full((n, n), np.inf)
    for i in range(n - 1):
        dist[i, i + 1:] = own[i] + own[i + 1:] - objf(acc[i][None, :] + acc[i + 1:])
    active = np.ones(n, dtype=bool)
    change = 0.0
    while True:
        flat = int(np.argmin(dist))
        i, j = divmod(flat, n)
        d = dist[i, j]
        if not d < thresh:
            break
        change -= d
        acc[i] += acc[j]
        own[i] = objf(acc[i][None, :])[0]
        active[j] = False
        rep[rep == j] = i
        dist[j, :] = np.inf
        dist[:, j] = np.inf
        others = np.flatnonzero(active)
        others = others[others != i]
        if len(others):
            dd = own[i] + own[others] - objf(acc[i][None, :] + acc[others])
            lo, hi = others[others < i], others[others > i]
            dist[lo, i] = dd[others < i]
            dist[i, hi] = dd[others > i]
    return rep, change


def build_tree(stats: TreeStats, questions: Questions, roots: Optional[Sequence[RootSpec]] = None, *,
               num_pdf_classes: Optional[NumPdfClasses] = None, silence_phones: Sequence[int] = (),
               config: Optional[TreeBuildConfig] = None, **overrides) -> BuildResult:
    """Build a decision tree (see the module doc). ``roots`` default: :func:`default_roots` of the phones
    with statistics and ``silence_phones``. ``num_pdf_classes`` (int, {phone: n} or list by phone) is
    needed for not-shared roots; default: 1 + the highest pdf-class seen for the phone (or in all the
    statistics, for an unseen phone). ``overrides`` set fields of the config (``max_leaves=...``)."""
    with blas_threads(1):
        return _build_tree(stats, questions, roots, num_pdf_classes=num_pdf_classes,
                           silence_phones=silence_phones, config=config, **overrides)


def _build_tree(stats: TreeStats, questions: Questions, roots: Optional[Sequence[RootSpec]] = None, *,
                num_pdf_classes: Optional[NumPdfClasses] = None, silence_phones: Sequence[int] = (),
                config: Optional[TreeBuildConfig] = None, **overrides) -> BuildResult:
    t0 = time.perf_counter()
    cfg = config or TreeBuildConfig()
    if overrides:
        cfg = TreeBuildConfig(**{**cfg.__dict__, **overrides})
    n_ctx, p = stats.context_width, stats.central_position
    if roots is None:
        roots = default_roots(stats.phones().tolist(), silence_phones)
    roots = list(roots)
    if not roots:
        raise ValueError("build_tree: no roots (empty statistics and no roots spec)")
    seen = stats.phone_num_pdf_classes()
    global_max = max(seen.values()) if seen else 1

    def npc(ph: int) -> int:
        if num_pdf_classes is not None:
            return num_pdf_classes_of(num_pdf_classes, ph)
        return seen.get(ph, global_max)

    phone_root: Dict[int, int] = {}
    for r, spec in enumerate(roots):
        for ph in spec.phones:
            if ph in phone_root or ph <= 0:
                raise ValueError(f"roots: phone {ph} is repeated or not > 0")
            phone_root[ph] = r
    central = stats.central_phones
    missing = sorted(set(stats.phones().tolist()) - set(phone_root))
    if missing:
        raise ValueError(f"build_tree: phones {missing} have statistics but no root in the roots spec")
    unseen = sorted(set(phone_root) - set(seen))
    if unseen:
        log.warning("build_tree: %d phone(s) with a root have no statistics (their leaves will be "
                    "untrained): %s", len(unseen), unseen[:30])

    # ---- stub map (GetStubMap)
    next_id = 0
    work_roots: List[Optional[_WLeaf]] = []
    stub_nodes: List[Node] = []
    root_of_row = np.full(stats.num_contexts, -1, dtype=np.int64)
    lut = np.full(int(max(phone_root)) + 1, -1, dtype=np.int64)
    for ph, r in phone_root.items():
        lut[ph] = r
    if stats.num_contexts:
        root_of_row = lut[central]
    for r, spec in enumerate(roots):
        if spec.shared:
            rows = np.flatnonzero(root_of_row == r) if spec.split else np.zeros(0, dtype=np.int64)
            w = _WLeaf(next_id, rows, r)
            next_id += 1
            work_roots.append(w)
            stub_nodes.append(None)  # filled from the working tree later
        else:
            k = max(npc(ph) for ph in spec.phones)
            stub_nodes.append(TableNode(PDF_CLASS_KEY, [ConstantNode(next_id + j) for j in range(k)]))
            next_id += k
            work_roots.append(None)
    num_stub = next_id
    msgs: List[str] = []

    def note(msg: str, level=logging.INFO) -> None:
        msgs.append(msg)
        log.log(level, msg)

    note(f"build_tree: stub map has {num_stub} leaves for {len(roots)} roots")
    if 0 < cfg.max_leaves < num_stub:
        # every root keeps at least its own leaves: no tree can be smaller than the stub map
        note(f"build_tree: asked for {cfg.max_leaves} leaves, fewer than the {num_stub} leaves of the roots; "
             f"returning the unsplit roots", logging.WARNING)

    # ---- splitting (SplitDecisionTree)
    ev = _Evaluator(stats, questions, cfg)
    heap: List[Tuple[float, int, _WLeaf]] = []

    def consider(w: _WLeaf) -> None:
        g, k, ys = ev.best_split(w.rows)
        w.gain, w.key, w.yes_set = g, k, ys
        if k is not None:
            heapq.heappush(heap, (-g, w.id, w))

    for w in work_roots:
        if w is not None and roots[w.root].split:
            consider(w)
    num_leaves = num_stub
    max_leaves = cfg.max_leaves if cfg.max_leaves > 0 else np.iinfo(np.int64).max
    smallest, total_gain, num_splits = np.inf, 0.0, 0
    while heap and -heap[0][0] > cfg.thresh and num_leaves < max_leaves:
        neg, _, w = heapq.heappop(heap)
        yes_rows, no_rows = ev.partition(w.rows, w.key, w.yes_set)
        w.yes = _WLeaf(w.id, yes_rows, w.root)
        w.no = _WLeaf(next_id, no_rows, w.root)
        next_id += 1
        w.rows = None
        smallest = min(smallest, -neg)
        total_gain += -neg
        num_leaves += 1
        num_splits += 1
        consider(w.yes)
        consider(w.no)
    data_limited = cfg.max_leaves > 0 and num_leaves < cfg.max_leaves
    if data_limited:
        note(f"build_tree: asked for {cfg.max_leaves} leaves but the statistics support only {num_leaves} "
             f"(no split left with gain > {cfg.thresh:g} and >= {cfg.min_count:g} frames on each side)",
             logging.WARNING)
    note(f"build_tree: split {num_splits} times, {num_leaves} leaves, likelihood gain "
         f"{total_gain:.6g} ({total_gain / max(stats.total_count, 1e-10):.4f} per frame), "
         f"smallest split {smallest:.6g}")

    # ---- post-clustering within each root (ClusterEventMapRestrictedByMap)
    cluster_thresh = cfg.cluster_thresh
    if cluster_thresh < 0:
        cluster_thresh = float(smallest) if np.isfinite(smallest) else 0.0
    mapping: Dict[int, int] = {i: i for i in range(next_id)}
    cluster_change = 0.0
    if cluster_thresh > 0:
        removed = 0
        for w in work_roots:
            if w is None or not roots[w.root].split:
                continue
            leaves = _leaves_of(w)
            if len(leaves) < 2:
                continue
            acc = np.stack([ev.X[lf.rows].sum(0) if len(lf.rows) else np.zeros(ev.X.shape[1])
                            for lf in leaves])
            rep, ch = _cluster_bottom_up(acc, cluster_thresh, ev.objf)
            cluster_change += ch
            for i, lf in enumerate(leaves):
                target = leaves[int(rep[i])].id
                mapping[lf.id] = target
            removed += int(len(leaves) - len(np.unique(rep)))
        note(f"build_tree: clustering with threshold {cluster_thresh:.6g} removed {removed} leaves "
             f"(likelihood change {cluster_change:.6g})")
    # cluster representatives -> smallest id in the cluster, then renumber 0..K-1 in id order
    groups: Dict[int, List[int]] = {}
    for k, v in mapping.items():
        groups.setdefault(v, []).append(k)
    canon = {k: min(g) for g in groups.values() for k in g}
    final_ids = sorted(set(canon.values()))
    renum = {old: new for new, old in enumerate(final_ids)}
    final_map = {k: renum[canon[k]] for k in mapping}

    # ---- assemble the event map
    top: List[Optional[Node]] = [None] * (int(max(phone_root)) + 1)
    for r, spec in enumerate(roots):
        sub = stub_nodes[r] if work_roots[r] is None else _to_event_map(work_roots[r])
        for ph in spec.phones:
            top[ph] = sub
    tree = ContextTree(n_ctx, p, map_leaves(TableNode(p, top), final_map))
    num_pdfs = len(final_ids)
    pdfs = tree.map_batch(stats.contexts, stats.pdf_classes)
    if (pdfs < 0).any():
        raise RuntimeError("build_tree: some statistics do not map to a leaf (internal error)")
    pdf_counts = np.bincount(pdfs, weights=stats.counts, minlength=num_pdfs)
    secs = time.perf_counter() - t0
    note(f"build_tree: {num_pdfs} pdfs from {stats.num_contexts} contexts, {stats.total_count:.0f} frames "
         f"in {secs:.2f} s")
    return BuildResult(tree=tree, num_leaves=num_pdfs, num_leaves_split=num_leaves, num_splits=num_splits,
                       objf_gain=total_gain, cluster_objf_change=cluster_change,
                       smallest_split=float(smallest), cluster_thresh=cluster_thresh,
                       data_limited=bool(data_limited), pdf_counts=pdf_counts,
                       total_count=stats.total_count, seconds=secs, log_lines=msgs)


def _leaves_of(w: _WLeaf) -> List[_WLeaf]:
    out, stack = [], [w]
    while stack:
        x = stack.pop()
        if x.key is not None and x.yes is not None:
            stack.extend([x.no, x.yes])
        else:
            out.append(x)
    return out


def _to_event_map(w: _WLeaf) -> Node:
    """Working tree -> event map (iterative post-order)."""
    memo: Dict[int, Node] = {}
    order, stack = [], [w]
    while stack:
        x = stack.pop()
        order.append(x)
        if x.yes is not None:
            stack.extend([x.yes, x.no])
    for x in reversed(order):
        if x.yes is None:
            memo[id(x)] = ConstantNode(x.id)
        else:
            memo[id(x)] = SplitNode(x.key, x.yes_set, memo[id(x.yes)], memo[id(x.no)])
    return memo[id(w)]
