"""Questions for tree building: phone sets from top-down clustering (Kaldi's ``cluster-phones``),
extra questions, and pdf-class questions.

``cluster_phones`` does what Kaldi's ``AutomaticallyObtainQuestions`` does: the statistics of each phone
set (default: each phone alone) are summed over all contexts where it is the central phone (optionally
only some pdf-classes; Kaldi's default ``--pdf-class-list=1`` is the middle state of a three-state HMM),
then the sets are clustered top-down by binary k-means on the diagonal-Gaussian likelihood, recursively,
until every cluster holds one set. Every node of that cluster tree (root and leaves included) is a
question. The same phone questions are used for every context position (keys 0..N-1).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from asrkit.tree.stats import DEFAULT_VAR_FLOOR, PDF_CLASS_KEY, TreeStats, gauss_objf
from asrkit.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

QSet = Tuple[int, ...]


@dataclass
class Questions:
    """``phone_questions`` are asked of every context position; ``pdf_class_questions`` of key -1."""

    phone_questions: List[QSet] = field(default_factory=list)
    pdf_class_questions: List[QSet] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.phone_questions = _dedupe(self.phone_questions)
        self.pdf_class_questions = _dedupe(self.pdf_class_questions)

    def for_key(self, key: int) -> List[QSet]:
        return self.pdf_class_questions if key == PDF_CLASS_KEY else self.phone_questions

    def add_phone_questions(self, sets: Iterable[Sequence[int]]) -> "Questions":
        return Questions(self.phone_questions + [tuple(s) for s in sets], self.pdf_class_questions)


def _dedupe(sets: Iterable[Sequence[int]]) -> List[QSet]:
    out, seen = [], set()
    for s in sets:
        t = tuple(sorted(set(int(v) for v in s)))
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def default_pdf_class_questions(max_num_pdf_classes: int) -> List[QSet]:
    """{0..i} for i < n-1 (as Kaldi's compile-questions asks about the pdf-class) plus each single class."""
    n = int(max_num_pdf_classes)
    qs = [tuple(range(i + 1)) for i in range(n - 1)] + [(i,) for i in range(n)] if n > 1 else []
    return _dedupe(qs)


def read_sets(path_or_text: Union[str, os.PathLike]) -> List[QSet]:
    """Integer sets, one per line (Kaldi's sets.int / extra_questions.int / questions.int)."""
    p = Path(path_or_text) if not isinstance(path_or_text, str) or "\n" not in path_or_text else None
    text = p.read_text() if p is not None and p.exists() else str(path_or_text)
    where = str(p) if p is not None and p.exists() else "<text>"
    sets = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            sets.append(tuple(int(x) for x in line.split()))
        except ValueError:
            raise ValueError(f"{where}:{n}: expected integers, got {line!r}") from None
    return sets


def write_sets(sets: Iterable[Sequence[int]], path: Union[str, os.PathLike]) -> None:
    atomic_write_text(path, "".join(" ".join(str(v) for v in s) + "\n" for s in sets))


def _kmeans2(c: np.ndarray, s: np.ndarray, q: np.ndarray, rng: np.random.Generator, num_tries: int,
             var_floor: float) -> np.ndarray:
    """Two-way k-means of Gaussian statistics items on the likelihood (greedy best single moves until
    no move gains, like Kaldi's RefineClusters), best of ``num_tries`` random starts.

    Returns a bool assignment (True = cluster 1) with both clusters non-empty."""
    n = len(c)
    if n == 2:
        return np.array([False, True])
    best, best_obj = None, -np.inf
    for _ in range(num_tries):
        a = rng.random(n) < 0.5
        if a.all() or not a.any():
            i0 = int(rng.integers(n))
            a[:] = False
            a[i0] = True
        for _it in range(10 * n + 10):
            src = a.astype(np.int64)  # each item's cluster
            cs = np.array([c[~a].sum(), c[a].sum()])
            ss = np.stack([s[~a].sum(0), s[a].sum(0)])
            qs = np.stack([q[~a].sum(0), q[a].sum(0)])
            cur = gauss_objf(cs, ss, qs, var_floor)
            dst = 1 - src
            gain = (gauss_objf(cs[src] - c, ss[src] - s, qs[src] - q, var_floor)
                    + gauss_objf(cs[dst] + c, ss[dst] + s, qs[dst] + q, var_floor)
                    - cur[src] - cur[dst])
            sizes = np.array([n - a.sum(), a.sum()])
            gain[sizes[src] <= 1] = -np.inf  # never empty a cluster
            i = int(np.argmax(gain))
            if not gain[i] > 1e-9 * max(1.0, abs(float(cur.sum()))):
                break
            a[i] = not a[i]
        obj = float(gauss_objf(np.array([c[~a].sum(), c[a].sum()]),
                               np.stack([s[~a].sum(0), s[a].sum(0)]),
                               np.stack([q[~a].sum(0), q[a].sum(0)]), var_floor).sum())
        if obj > best_obj + 1e-9 * max(1.0, abs(obj)):
            best, best_obj = a.copy(), obj
    return best


def cluster_phones(stats: TreeStats, phone_sets: Optional[Sequence[Sequence[int]]] = None, *,
                   pdf_classes: Optional[Sequence[int]] = None, seed: int = 0, num_tries: int = 20,
                   var_floor: float = DEFAULT_VAR_FLOOR) -> List[QSet]:
    """Top-down binary clustering of phone sets on their central-phone statistics (Kaldi's cluster-phones).

    ``phone_sets``: the units to cluster (default: every central phone with statistics, each alone);
    ``pdf_classes``: only these pdf-classes' statistics are used (default: all). Sets without statistics
    are left out of the clustering (logged) and appear only in the root question. Returns the questions
    (every node's phone set, root first, breadth-first), deterministic for a given ``seed``.
    """
    phones, pc, ps, pq = stats.phone_stats(pdf_classes=pdf_classes)
    row = {int(p): i for i, p in enumerate(phones.tolist())}
    if phone_sets is None:
        phone_sets = [(int(p),) for p in phones.tolist() if p != 0]
    sets = [tuple(sorted(int(v) for v in s)) for s in phone_sets]
    dim = stats.dim
    c = np.zeros(len(sets))
    s = np.zeros((len(sets), dim))
    q = np.zeros((len(sets), dim))
    for i, st in enumerate(sets):
        for ph in st:
            if ph in row:
                c[i] += pc[row[ph]]
                s[i] += ps[row[ph]]
                q[i] += pq[row[ph]]
    have = np.flatnonzero(c > 0)
    missing = [sets[i] for i in np.flatnonzero(c <= 0)]
    if missing:
        log.warning("cluster_phones: %d phone set(s) have no statistics and are not clustered: %s",
                    len(missing), " ".join("/".join(map(str, m)) for m in missing[:20]))
    rng = np.random.default_rng(seed)
    questions: List[QSet] = [tuple(sorted(v for st in sets for v in st))]
    queue = [have]
    while queue:
        nxt = []
        for items in queue:
            if len(items) <= 1:
                continue
            a = _kmeans2(c[items], s[items], q[items], rng, num_tries, var_floor)
            for part in (items[~a], items[a]):
                questions.append(tuple(sorted(v for i in part for v in sets[i])))
                nxt.append(part)
        queue = nxt
    return _dedupe(questions)


def make_questions(stats: TreeStats, *, phone_sets: Optional[Sequence[Sequence[int]]] = None,
                   extra_questions: Optional[Iterable[Sequence[int]]] = None,
                   cluster_pdf_classes: Optional[Sequence[int]] = None,
                   max_num_pdf_classes: Optional[int] = None, seed: int = 0,
                   num_tries: int = 20, var_floor: float = DEFAULT_VAR_FLOOR) -> Questions:
    """Questions as Kaldi's prepare_lang + cluster-phones + compile-questions make them: clustered phone
    sets, then ``extra_questions`` (e.g. phone classes), plus pdf-class questions for up to
    ``max_num_pdf_classes`` (default: from the statistics)."""
    qs = cluster_phones(stats, phone_sets, pdf_classes=cluster_pdf_classes, seed=seed,
                        num_tries=num_tries, var_floor=var_floor)
    if extra_questions is not None:
        qs = qs + [tuple(x) for x in extra_questions]
    if max_num_pdf_classes is None:
        max_num_pdf_classes = int(stats.pdf_classes.max()) + 1 if stats.num_contexts else 1
    return Questions(qs, default_pdf_class_questions(max_num_pdf_classes))
