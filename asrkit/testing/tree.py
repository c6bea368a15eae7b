"""Tree-building inputs for tests and benchmarks, no audio needed: statistics of every triphone, and
per-frame data with a planted right-context effect."""
from __future__ import annotations

import numpy as np

from asrkit.tree.stats import TreeStats


def make_triphone_stats(num_phones: int = 40, dim: int = 40, total_frames: float = 3e6,
                             num_pdf_classes: int = 1, zipf_a: float = 1.1, context_weight: float = 0.3,
                             seed: int = 0) -> TreeStats:
    """Every triphone (l, c, r) with l, r in 0..num_phones (0 = utterance edge) and c in 1..num_phones,
    each pdf-class, seen with Zipf-distributed frame counts summing to about ``total_frames``.

    The mean of a context is ``mu[c] + context_weight * (mu[l] + mu[r]) + pdf-class offset``; the
    within-context variance is 1 in every dimension. Statistics are exact for that Gaussian with a
    small random perturbation of the sums (like finite samples)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 1.0, size=(num_phones + 1, dim))
    mu[0] = 0.0
    cls = rng.normal(0.0, 0.5, size=(num_pdf_classes, dim))
    ph = np.arange(num_phones + 1)
    l, c, r, k = np.meshgrid(ph, ph[1:], ph, np.arange(num_pdf_classes), indexing="ij")
    l, c, r, k = l.ravel(), c.ravel(), r.ravel(), k.ravel()
    m = len(l)
    ranks = rng.permutation(m) + 1
    w = 1.0 / ranks.astype(np.float64) ** zipf_a
    counts = np.maximum(1.0, np.round(w / w.sum() * total_frames))
    mean = mu[c] + context_weight * (mu[l] + mu[r]) + cls[k]
    noise = rng.normal(0.0, 1.0, size=(m, dim)) / np.sqrt(counts)[:, None]
    sample_mean = mean + noise
    sums = counts[:, None] * sample_mean
    var = rng.chisquare(np.minimum(counts, 1e6)[:, None], size=(m, dim)) / np.maximum(counts, 1)[:, None]
    sumsqs = counts[:, None] * (var + sample_mean ** 2)
    ctx = np.stack([l, c, r], axis=1)
    return TreeStats(3, 1, ctx, k, counts, sums, sumsqs)


def make_planted_frames(num_utts: int = 300, num_phones: int = 6, dim: int = 3, num_pdf_classes: int = 1,
                   affected=(1, 2), trigger=(3, 4), shift: float = 3.0, silence: int = 6,
                   frames_per_state=(2, 4), seed: int = 0):
    """Per-frame (phones, pdf_classes, feats, utt_lengths, phone_starts) of random phone sequences with a
    planted right-context effect: frames of a phone in ``affected`` whose right neighbour is in
    ``trigger`` are shifted by ``shift`` in every dimension. Each pdf-class of a phone has its own mean;
    phone instances are 1..3 per utterance-edge silence plus 4..12 random phones (no immediate repeats)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 4.0, size=(num_phones + 1, num_pdf_classes, dim))
    speech = [p for p in range(1, num_phones + 1) if p != silence]
    phones, pdfs, starts, lengths, means = [], [], [], [], []
    for _ in range(num_utts):
        seq = [silence] if silence else []
        for _ in range(int(rng.integers(4, 13))):
            nxt = int(rng.choice(speech))
            while seq and seq[-1] == nxt:
                nxt = int(rng.choice(speech))
            seq.append(nxt)
        if silence:
            seq.append(silence)
        t0 = len(phones)
        for i, ph in enumerate(seq):
            right = seq[i + 1] if i + 1 < len(seq) else 0
            first = True
            for k in range(num_pdf_classes):
                for _ in range(int(rng.integers(frames_per_state[0], frames_per_state[1] + 1))):
                    m = mu[ph, k].copy()
                    if ph in affected and right in trigger:
                        m += shift
                    phones.append(ph)
                    pdfs.append(k)
                    starts.append(first)
                    means.append(m)
                    first = False
        lengths.append(len(phones) - t0)
    feats = np.asarray(means) + rng.normal(0.0, 1.0, size=(len(means), dim))
    return (np.asarray(phones, dtype=np.int32), np.asarray(pdfs, dtype=np.int32), feats.astype(np.float32),
            np.asarray(lengths), np.asarray(starts, dtype=bool))
