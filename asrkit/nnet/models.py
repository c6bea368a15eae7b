"""Acoustic models: a bidirectional LSTM teacher and a unidirectional (streaming) LSTM student.

Both map ``(B, T, 192)`` stacked, normalised 30 ms frames to ``(B, T, num_senones)`` logits through a
stack of LSTM layers (optionally LSTMP: ``proj_size``) and one linear output layer.

* Bidirectional models pack the padded batch (``pack_padded_sequence``), so a padded frame never
  reaches the backward direction of a real frame: outputs of real frames do not depend on padding.
* Unidirectional models run on the padded batch directly (padding only follows real frames, so it
  cannot change their outputs) and accept / return the LSTM state ``(h, c)``: a chunked forward that
  carries the state equals the whole-utterance pass (:meth:`LstmAcousticModel.forward`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Dict, Optional, Tuple

import torch
from torch import nn

State = Tuple[torch.Tensor, torch.Tensor]


@dataclass
class ModelConfig:
    """Everything that fixes the shapes of a model's parameters (compared when resuming)."""

    input_dim: int = 192
    num_senones: int = 3000
    num_layers: int = 5
    hidden_size: int = 768  # cells per direction
    proj_size: int = 0  # 0: plain LSTM; >0: LSTMP with a recurrent projection of this size
    bidirectional: bool = False
    dropout: float = 0.0  # between LSTM layers and before the output layer

    def to_dict(self) -> Dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**d)

    @property
    def output_size(self) -> int:
        """Width of the LSTM stack's output per direction."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size


def count_parameters_analytic(cfg: ModelConfig) -> int:
    """Parameter count without building the model (torch's LSTM: two bias vectors per gate block)."""
    dirs = 2 if cfg.bidirectional else 1
    h, r = cfg.hidden_size, cfg.output_size
    total = 0
    for layer in range(cfg.num_layers):
        inp = cfg.input_dim if layer == 0 else r * dirs
        per_dir = 4 * h * inp + 4 * h * r + 8 * h
        if cfg.proj_size > 0:
            per_dir += cfg.proj_size * h
        total += dirs * per_dir
    total += r * dirs * cfg.num_senones + cfg.num_senones
    return total


class LstmAcousticModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(
            input_size=cfg.input_dim,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
            proj_size=cfg.proj_size,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        dirs = 2 if cfg.bidirectional else 1
        self.output = nn.Linear(cfg.output_size * dirs, cfg.num_senones)

    @property
    def streaming(self) -> bool:
        return not self.cfg.bidirectional

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None,
                state: Optional[State] = None) -> Tuple[torch.Tensor, Optional[State]]:
        """``x`` (B, T, D) -> logits (B, T, num_senones) and the final state (unidirectional only).

        ``lengths`` (B,) real frames per row (None: all T). Outputs at padded positions are
        unspecified (zeros for bidirectional models) and must be masked by the caller.
        ``state``: the ``(h, c)`` returned by the previous chunk (unidirectional models only).
        """
        if self.cfg.bidirectional:
            if state is not None:
                raise ValueError("a bidirectional model cannot carry state between chunks")
            if lengths is not None and bool((lengths < x.shape[1]).any()):
                packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                           enforce_sorted=False)
                out, _ = self.lstm(packed)
                out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            else:
                out, _ = self.lstm(x)
            new_state = None
        else:
            out, new_state = self.lstm(x, state)
        return self.output(self.dropout(out)), new_state


def build_model(cfg: ModelConfig, device=None) -> LstmAcousticModel:
    if device is None:
        return LstmAcousticModel(cfg)
    with torch.device(device):
        return LstmAcousticModel(cfg)
