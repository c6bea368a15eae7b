"""Bootstrap comparisons of two systems over utterances and training seeds.

A system trained with several seeds is a matrix of errors ``errors[seed, utterance]`` on a test set
(``words[utterance]`` reference words). Its WER is the mean over seeds of each seed's WER on the set.

:func:`seed_utterance_bootstrap` compares a baseline (system 1) with a candidate (system 2) trained
with the same seeds, scored on the same utterances: each replication draws utterances with replacement
(both systems on the same draw, Bisani and Ney's paired bootstrap) and, when there are several seeds,
seeds with replacement too (both systems on the same seeds: seed S of each was trained from the same
initialisation and batch order, a paired design as the utterances are). The spread of the replications
thus holds both the test-set sampling and the training noise. With one seed it is exactly the paired
utterance bootstrap (the same draws as before seeds existed). With 3 seeds the seed draw has only 10
distinct outcomes: the interval is coarse, as 3 runs are.

Returned (percent): ``delta`` = WER1 - WER2 (absolute), ``rel`` = delta / WER1 (the relative
reduction), their 95% percentile intervals ``*_lo``, ``*_hi``, and ``p_better``: the share of
replications where system 2 made fewer errors. A reduction is significant when ``delta_lo > 0``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, Path]


def read_text_table(path: PathLike) -> Dict[str, List[str]]:
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        f = line.split()
        if f:
            out[f[0]] = f[1:]
    return out


def utterance_errors(ref_text: PathLike, hyps: Sequence[PathLike],
                     utts: Optional[Sequence[str]] = None) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """``(utterances, words[u], errors[h, u])`` of each hypothesis file against ``ref_text`` (Kaldi text;
    a missing hypothesis is empty: all deletions), over ``utts`` (default: every reference, sorted)."""
    import kaldialign

    refs = read_text_table(ref_text)
    utts = sorted(refs) if utts is None else list(utts)
    missing = [u for u in utts if u not in refs]
    if missing:
        raise ValueError(f"{ref_text}: no reference for {len(missing)} utterance(s), e.g. {missing[0]}")
    words = np.array([len(refs[u]) for u in utts], dtype=np.float64)
    errs = np.zeros((len(hyps), len(utts)), dtype=np.float64)
    for i, h in enumerate(hyps):
        hy = read_text_table(h)
        errs[i] = [kaldialign.edit_distance(refs[u], hy.get(u, []))["total"] for u in utts]
    return utts, words, errs


BOOTSTRAP_BLOCK = 1 << 22  # utterance draws held at once (32 MB of int64), whatever the test set's size


def _utterance_sums(matrices: Sequence[np.ndarray], words: np.ndarray, replications: int,
                    rng: np.random.Generator, block: Optional[int] = None):
    """Per replication, the drawn utterances' sums: of each ``(seeds, utterances)`` matrix per seed
    (``(R, seeds)`` each) and of ``words`` (``(R,)``). The draws are made in blocks of replications: the
    generator's stream continues across calls, so the indices are exactly those of one
    ``(replications, utterances)`` draw, at bounded memory (a 10^5-utterance set: 1.6 GB at once)."""
    n_utts = len(words)
    rows = max(1, (block or BOOTSTRAP_BLOCK) // max(n_utts, 1))
    sums = [np.empty((replications, m.shape[0])) for m in matrices]
    w = np.empty(replications)
    for a in range(0, replications, rows):
        idx = rng.integers(0, n_utts, size=(min(rows, replications - a), n_utts))
        b = a + len(idx)
        for m, out in zip(matrices, sums):
            out[a:b] = np.stack([m[s][idx].sum(1) for s in range(m.shape[0])], 1)
        w[a:b] = words[idx].sum(1)
    return sums, w


def _over_seeds(per_seed: np.ndarray, seed_idx: Optional[np.ndarray]) -> np.ndarray:
    """Per replication: the mean over the drawn seeds (one seed: its column)."""
    if seed_idx is None:
        return per_seed[:, 0]
    return np.take_along_axis(per_seed, seed_idx, 1).mean(1)


def _replicated_errors(errors: np.ndarray, utt_idx: np.ndarray, seed_idx: Optional[np.ndarray]) -> np.ndarray:
    """Per replication: the mean over the drawn seeds of the errors on the drawn utterances."""
    per_seed = np.stack([errors[s][utt_idx].sum(1) for s in range(errors.shape[0])], 1)  # (R, seeds)
    return _over_seeds(per_seed, seed_idx)


def seed_utterance_bootstrap(errors1: np.ndarray, errors2: np.ndarray, words: np.ndarray,
                             replications: int = 2000, seed: int = 0) -> Dict[str, float]:
    """System 1 (baseline) against system 2 (module doc). ``errors*``: ``(seeds, utterances)`` (or one
    row per utterance for one seed), the same seeds in the same order in both."""
    e1, e2 = np.atleast_2d(np.asarray(errors1, np.float64)), np.atleast_2d(np.asarray(errors2, np.float64))
    n = np.asarray(words, dtype=np.float64)
    if e1.shape != e2.shape or e1.shape[1] != len(n):
        raise ValueError(f"errors {e1.shape} and {e2.shape} over {len(n)} utterances: need the same seeds and "
                         f"utterances in both")
    if n.sum() == 0:
        raise ValueError("no reference words")
    rng = np.random.default_rng(seed)
    # the difference summed as such: exact in integers
    (s1, sd), w = _utterance_sums([e1, e1 - e2], n, replications, rng)
    seed_idx = rng.integers(0, e1.shape[0], size=(replications, e1.shape[0])) if e1.shape[0] > 1 else None
    r1, dr = _over_seeds(s1, seed_idx), _over_seeds(sd, seed_idx)
    t1, dt = e1.sum(1).mean(), (e1 - e2).sum(1).mean()
    out = {"delta": 100.0 * dt / n.sum(), "rel": 100.0 * dt / t1 if t1 else 0.0,
           "p_better": float(np.mean(dr > 0)), "seeds": e1.shape[0], "replications": replications}
    for k, v in (("delta", 100.0 * dr / np.maximum(w, 1)), ("rel", 100.0 * dr / np.maximum(r1, 1))):
        out[f"{k}_lo"], out[f"{k}_hi"] = (float(x) for x in np.percentile(v, [2.5, 97.5]))
    return out


def relative_reduction_gap(a: Tuple[np.ndarray, np.ndarray, np.ndarray], b: Tuple[np.ndarray, np.ndarray, np.ndarray],
                           replications: int = 2000, seed: int = 0) -> Dict[str, float]:
    """Is the relative reduction larger on condition ``b`` than on ``a``? Each is ``(errors1, errors2,
    words)`` of the two systems on that condition's utterances (different utterances: each resampled on
    its own; the same seeds: drawn once for both). Returns ``gap`` = rel(b) - rel(a) in points with its 95%
    interval (``gap_lo``, ``gap_hi``)."""
    rng = np.random.default_rng(seed)
    rels, points = [], []
    seed_idx = None
    for e1, e2, n in (a, b):
        e1, e2 = np.atleast_2d(np.asarray(e1, np.float64)), np.atleast_2d(np.asarray(e2, np.float64))
        if seed_idx is None and e1.shape[0] > 1:
            seed_idx = rng.integers(0, e1.shape[0], size=(replications, e1.shape[0]))
        utt_idx = rng.integers(0, e1.shape[1], size=(replications, e1.shape[1]))
        r1, dr = _replicated_errors(e1, utt_idx, seed_idx), _replicated_errors(e1 - e2, utt_idx, seed_idx)
        rels.append(100.0 * dr / np.maximum(r1, 1))
        t1, dt = e1.sum(1).mean(), (e1 - e2).sum(1).mean()
        points.append(100.0 * dt / t1 if t1 else 0.0)
    lo, hi = np.percentile(rels[1] - rels[0], [2.5, 97.5])
    return {"gap": points[1] - points[0], "gap_lo": float(lo), "gap_hi": float(hi)}
