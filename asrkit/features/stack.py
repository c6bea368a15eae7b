"""The frame rule (docs/design.md): 10 ms frames, stacked by three into 30 ms frames.

An utterance of ``duration`` seconds has ``n = num_frames(duration)`` frames of 10 ms (25 ms windows,
``snip_edges=False``: Kaldi's and lhotse's ``(num_samples + hop // 2) // hop``). It has
``T = num_stacked_frames(n) = ceil(n / 3)`` frames of 30 ms:

* :func:`stack_frames` turns ``(n, D)`` into ``(T, 3 * D)``; 30 ms frame ``t`` is the concatenation of
  10 ms frames ``3t, 3t + 1, 3t + 2``, the end padded by repeating the last 10 ms frame;
* :func:`stack_labels` turns per-10 ms integer labels ``(n,)`` into ``(T,)``; 30 ms frame ``t`` takes
  the label of 10 ms frame ``min(3t + 1, n - 1)`` (the middle one).

Both accept a numpy array or a torch tensor and return the same kind (torch stays on its device).
Every later stage goes through these functions instead of re-deriving the arithmetic.
"""
from __future__ import annotations

from typing import Any

import numpy as np

FRAME_SHIFT = 0.01  # seconds, 10 ms
FRAME_LENGTH = 0.025  # seconds, 25 ms
SAMPLING_RATE = 16000
STACK = 3  # 10 ms frames per 30 ms frame
STACKED_FRAME_SHIFT = FRAME_SHIFT * STACK


def num_frames_from_samples(num_samples: int, sampling_rate: int = SAMPLING_RATE,
                            frame_shift: float = FRAME_SHIFT) -> int:
    """Number of 10 ms frames of a signal of ``num_samples`` samples (``snip_edges=False``)."""
    hop = round(frame_shift * sampling_rate)
    return int((int(num_samples) + hop // 2) // hop)


def num_frames(duration: float, sampling_rate: int = SAMPLING_RATE, frame_shift: float = FRAME_SHIFT) -> int:
    """Number of 10 ms frames of an utterance of ``duration`` seconds (the frame rule).

    Identical to ``lhotse.utils.compute_num_frames``, which lhotse uses for ``cut.num_frames``.
    """
    return num_frames_from_samples(round(duration * sampling_rate), sampling_rate, frame_shift)


def num_stacked_frames(n: int, factor: int = STACK) -> int:
    """T = ceil(n / factor): the number of 30 ms frames of ``n`` 10 ms frames."""
    if n < 0:
        raise ValueError(f"negative number of frames: {n}")
    return -(-int(n) // factor)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def stacked_frame_indices(n: int, factor: int = STACK) -> np.ndarray:
    """(T, factor) indices of the 10 ms frames that make each 30 ms frame (end padding repeats n-1)."""
    T = num_stacked_frames(n, factor)
    return np.minimum(np.arange(T * factor), max(n - 1, 0)).reshape(T, factor)


def label_frame_indices(n: int, factor: int = STACK) -> np.ndarray:
    """(T,) index of the 10 ms frame whose label 30 ms frame t takes: min(factor*t + factor//2, n-1)."""
    T = num_stacked_frames(n, factor)
    return np.minimum(np.arange(T) * factor + factor // 2, max(n - 1, 0))


def stack_frames(feats, factor: int = STACK):
    """(n, D) 10 ms frames -> (ceil(n/factor), factor*D) frames; numpy or torch in, same kind out."""
    if feats.ndim != 2:
        raise ValueError(f"stack_frames expects a 2-D (frames, dim) array, got shape {tuple(feats.shape)}")
    n, dim = feats.shape
    T = num_stacked_frames(n, factor)
    if n == 0:
        return feats.reshape(0, factor * dim)
    if n % factor == 0:  # no padding: a free reshape of a contiguous array
        if _is_torch(feats):
            return feats.reshape(T, factor * dim)
        return np.ascontiguousarray(feats).reshape(T, factor * dim)
    idx = stacked_frame_indices(n, factor).reshape(-1)
    if _is_torch(feats):
        import torch

        idx_t = torch.from_numpy(idx).to(feats.device)
        return feats.index_select(0, idx_t).reshape(T, factor * dim)
    return feats[idx].reshape(T, factor * dim)


def stack_labels(labels, factor: int = STACK):
    """(n,) per-10 ms integer labels -> (ceil(n/factor),) per-30 ms labels (the middle frame's label).

    Extra trailing dimensions (e.g. (n, k) top-k ids) are carried along.
    """
    n = labels.shape[0]
    idx = label_frame_indices(n, factor)
    if _is_torch(labels):
        import torch

        return labels.index_select(0, torch.from_numpy(idx).to(labels.device))
    return labels[idx]
