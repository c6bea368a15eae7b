"""Named model sizes. ``paper``: the article's teacher (BLSTM 5 x 832, about 78 M parameters with 192
inputs and 3,000 senones) and student (LSTM 5 x 768, about 24 M); ``small`` trains in minutes on 2 CPU
cores; ``tiny`` is for tests."""
from __future__ import annotations

from dataclasses import replace
from typing import Dict

from asrkit.nnet.models import ModelConfig

_LAYERS: Dict[str, Dict[str, Dict]] = {
    "teacher": {
        "paper": dict(num_layers=5, hidden_size=832, dropout=0.1),
        "medium": dict(num_layers=4, hidden_size=512, dropout=0.1),
        "small": dict(num_layers=3, hidden_size=256, dropout=0.1),
        "tiny": dict(num_layers=2, hidden_size=32, dropout=0.0),
    },
    "student": {
        "paper": dict(num_layers=5, hidden_size=768, dropout=0.1),
        "medium": dict(num_layers=4, hidden_size=512, dropout=0.1),
        "small": dict(num_layers=3, hidden_size=256, dropout=0.1),
        "tiny": dict(num_layers=2, hidden_size=32, dropout=0.0),
    },
}

ROLES = tuple(_LAYERS)
PRESETS = tuple(_LAYERS["teacher"])


def preset(role: str, name: str, num_senones: int = 3000, input_dim: int = 192, **overrides) -> ModelConfig:
    """``preset("teacher", "paper", num_senones=N)`` -> ModelConfig (bidirectional for the teacher)."""
    if role not in _LAYERS:
        raise ValueError(f"unknown role {role!r}: expected one of {ROLES}")
    if name not in _LAYERS[role]:
        raise ValueError(f"unknown preset {name!r}: expected one of {PRESETS}")
    cfg = ModelConfig(input_dim=input_dim, num_senones=num_senones, bidirectional=(role == "teacher"),
                      **_LAYERS[role][name])
    return replace(cfg, **overrides) if overrides else cfg
