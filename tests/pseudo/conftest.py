"""Fixtures of the pseudo-label tests: a tiny random teacher and feature arrays keyed by cut id."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

NUM_SENONES = 40
DIM = 192


class TinyTeacher(torch.nn.Module):
    """A bidirectional-LSTM-like teacher reduced to what matters: (B, T, 192) -> (B, T, S) logits
    that depend on context (a 1-D convolution), with a ``lengths`` argument like asrkit.nnet's."""

    def __init__(self, num_senones: int = NUM_SENONES, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.proj = torch.nn.Linear(DIM, 16)
        self.conv = torch.nn.Conv1d(16, 16, 3, padding=1)
        self.out = torch.nn.Linear(16, num_senones)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x, lengths=None):
        h = torch.tanh(self.proj(x))
        if lengths is not None:  # padding must not leak into real frames
            mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
            h = h * mask[..., None]
        h = torch.tanh(self.conv(h.transpose(1, 2)).transpose(1, 2))
        return self.out(h) * 2.0, None


def make_cuts(n: int = 23, seed: int = 0, min_len: int = 1, max_len: int = 60):
    rng = np.random.default_rng(seed)
    cuts = [SimpleNamespace(id=f"utt{i:03d}") for i in range(n)]
    feats = {c.id: rng.standard_normal((int(rng.integers(min_len, max_len + 1)), DIM)).astype(np.float32)
             for c in cuts}
    return cuts, feats


@pytest.fixture
def teacher():
    torch.manual_seed(0)
    return TinyTeacher()


@pytest.fixture
def data():
    return make_cuts()
