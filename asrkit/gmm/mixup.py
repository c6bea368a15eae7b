"""Mixing-up (Kaldi's ``AmDiagGmm::SplitByCount``) with a seeded random perturbation.

The bindings' ``split_by_count`` draws its perturbation from ``std::random_device``, which cannot be
seeded, so two runs of the same training on the same data gave different models from the first
mixing-up on. Here the split targets are Kaldi's ``GetSplitTargets`` and the split is
``DiagGmm::Split`` (repeatedly halve the heaviest Gaussian and move the two copies' ``mean/var`` apart
by ``perturb_factor * N(0, 1) / stddev``), with the noise from a numpy generator the caller seeds.
"""
from __future__ import annotations

import heapq
from typing import List

import numpy as np


def split_targets(state_occs: np.ndarray, target_components: int, power: float, min_count: float) -> List[int]:
    """Gaussians per pdf (at least 1) for ``target_components`` in total, in proportion to occ**power;
    a pdf stops taking Gaussians once each would have ``min_count`` frames or fewer (GetSplitTargets)."""
    occs = np.asarray(state_occs, dtype=np.float64)
    num = [1] * len(occs)
    # max-heap on occ**power per Gaussian; the pdf index breaks ties so the order is defined
    heap = [(-(o ** power), p) for p, o in enumerate(occs)]
    heapq.heapify(heap)
    total = len(occs)
    while total < target_components and heap:
        _, p = heapq.heappop(heap)
        if (num[p] + 1) * min_count >= occs[p] or occs[p] <= 0:
            continue  # min-count reached: this pdf takes no more Gaussians
        num[p] += 1
        total += 1
        heapq.heappush(heap, (-(occs[p] ** power) / num[p], p))
    return num


def split_gmm(gmm, target: int, perturb_factor: float, rng: np.random.Generator) -> None:
    """Split the DiagGmm ``gmm`` in place up to ``target`` Gaussians (DiagGmm::Split)."""
    n = int(gmm.num_gauss)
    if target <= n:
        return
    w = np.zeros(target)
    mi = np.zeros((target, gmm.dim))
    iv = np.zeros((target, gmm.dim))
    w[:n] = np.asarray(gmm.weights, dtype=np.float64)
    mi[:n] = np.asarray(gmm.means_invvars, dtype=np.float64)
    iv[:n] = np.asarray(gmm.inv_vars, dtype=np.float64)
    for c in range(n, target):
        k = int(np.argmax(w[:c]))  # the first of equal weights, as Kaldi's scan
        w[k] /= 2
        w[c] = w[k]
        step = perturb_factor * rng.standard_normal(gmm.dim) * np.sqrt(iv[k])
        iv[c] = iv[k]
        mi[c] = mi[k] + step
        mi[k] -= step
    gmm.resize(target, gmm.dim)
    gmm.set_weights(w.astype(np.float32))
    gmm.set_invvars_and_means(iv.astype(np.float32), (mi / iv).astype(np.float32))
    gmm.compute_gconsts()


def split_by_count(am, state_occs: np.ndarray, target_components: int, perturb_factor: float, power: float,
                   min_count: float, seed: int) -> None:
    """Mix ``am`` up towards ``target_components`` Gaussians in total; the same seed gives the same model."""
    rng = np.random.default_rng([seed, int(am.num_gauss), int(target_components)])
    targets = split_targets(state_occs, target_components, power, min_count)
    for p, t in enumerate(targets):
        split_gmm(am.get_pdf(p), t, perturb_factor, rng)
