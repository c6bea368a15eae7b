"""A TorchScript student for deployment without asrkit: one chunk in, log-posteriors and LSTM state out.

``torch.jit.load("student.ts")(x, h, c) -> (log_posteriors, h, c)`` with ``x`` (1, T, 192) normalised
stacked features (asrkit.infer.frontend), ``h``/``c`` (layers, 1, hidden) zeros at the start of an
utterance and the returned ones after. Traced from the PyTorch model; :func:`write_torchscript` refuses to
write one whose chunked outputs are not bit-identical to :func:`asrkit.nnet.infer.log_posteriors` with
``streaming=True`` on a random utterance.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch

from asrkit.nnet.infer import log_posteriors
from asrkit.nnet.models import LstmAcousticModel


class StreamingStep(torch.nn.Module):
    def __init__(self, model: LstmAcousticModel):
        super().__init__()
        self.lstm, self.output = model.lstm, model.output

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        out, (h, c) = self.lstm(x, (h, c))
        return torch.log_softmax(self.output(out).float(), -1), h, c


def initial_state(model: LstmAcousticModel):
    cfg = model.cfg
    h = torch.zeros(cfg.num_layers, 1, cfg.output_size)
    return h, torch.zeros(cfg.num_layers, 1, cfg.hidden_size)


def run_chunks(ts, feats: np.ndarray, chunk: int, state) -> np.ndarray:
    h, c = state
    outs = []
    with torch.no_grad():
        for a in range(0, len(feats), chunk):
            o, h, c = ts(torch.from_numpy(np.ascontiguousarray(feats[a:a + chunk]))[None], h, c)
            outs.append(o[0].numpy())
    return np.concatenate(outs)


def write_torchscript(model: LstmAcousticModel, path: Union[str, Path], chunk: int = 32, seed: int = 0) -> Path:
    """Trace ``model`` (a unidirectional student) to ``path`` and check it against the PyTorch model."""
    if model.cfg.bidirectional:
        raise ValueError("TorchScript export is for the streaming student (a unidirectional network)")
    model = model.eval()
    state = initial_state(model)
    x = torch.zeros(1, chunk, model.cfg.input_dim)
    with torch.no_grad():
        ts = torch.jit.trace(StreamingStep(model), (x, *state))
    ts.save(str(path))
    ts = torch.jit.load(str(path))
    feats = np.random.default_rng(seed).standard_normal((3 * chunk + 5, model.cfg.input_dim)).astype(np.float32)
    want = log_posteriors(model, feats, streaming=True, chunk=chunk)
    got = run_chunks(ts, feats, chunk, initial_state(model))
    if not np.array_equal(got, want):
        raise RuntimeError(f"the traced student differs from the PyTorch one by up to {np.abs(got - want).max()}")
    return Path(path)
