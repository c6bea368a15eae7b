"""Kaldi-style deltas (``add-deltas``): the MFCC of the GMM system get them on the fly.

Kaldi's ``DeltaFeatures`` builds one window per order: order 0 is ``[1]``; order i convolves the
window of order i-1 with ``[-w, ..., w]`` and divides by ``sum_{j=-w..w} j^2`` (10 for w = 2). Each
window is applied to the *input* features, frames outside the utterance replaced by the first or last
frame. So the second-order window for w = 2 is ``[4, 4, 1, -4, -10, -4, 1, 4, 4] / 100`` applied to the
input (not a delta of the clamped delta: the two differ in the last frames).
"""
from __future__ import annotations

from typing import List

import numpy as np


def delta_windows(order: int = 2, window: int = 2) -> List[np.ndarray]:
    """Kaldi's ``DeltaFeatures`` scales: ``order + 1`` windows, of lengths 1, 1 + 2w, 1 + 4w, ..."""
    if order < 0 or window < 1:
        raise ValueError(f"bad delta options: order={order} window={window}")
    ramp = np.arange(-window, window + 1, dtype=np.float64)
    normalizer = float(np.sum(ramp**2))
    scales = [np.ones(1)]
    for _ in range(order):
        scales.append(np.convolve(scales[-1], ramp) / normalizer)
    return scales


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """(n, D) -> (n, D * (order + 1)): features, deltas, delta-deltas (Kaldi's ``add-deltas``).

    float32 out (float64 arithmetic inside). numpy only: call ``.numpy()`` on a torch tensor first.
    """
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise ValueError(f"add_deltas expects (frames, dim), got shape {feats.shape}")
    n, dim = feats.shape
    out = np.empty((n, dim * (order + 1)), dtype=np.float32)
    if n == 0:
        return out
    scales = delta_windows(order, window)
    max_offset = (len(scales[-1]) - 1) // 2
    x = feats.astype(np.float64, copy=False)
    padded = np.concatenate([np.repeat(x[:1], max_offset, 0), x, np.repeat(x[-1:], max_offset, 0)])
    for i, sc in enumerate(scales):
        half = (len(sc) - 1) // 2
        acc = np.zeros((n, dim), dtype=np.float64)
        for j in range(-half, half + 1):
            s = sc[j + half]
            if s != 0.0:
                start = max_offset + j
                acc += s * padded[start : start + n]
        out[:, i * dim : (i + 1) * dim] = acc
    return out
