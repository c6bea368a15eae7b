"""Tiny audio and cuts for the feature tests (numpy + soundfile + lhotse)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

SR = 16000


def make_cuts(folder: Path, durations: Sequence[float], seed: int = 0, prefix: str = "u"):
    """One FLAC recording per duration (speech-like: harmonics + noise), as a lhotse CutSet."""
    import soundfile as sf
    from lhotse import CutSet, Recording

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cuts = []
    for i, d in enumerate(durations):
        n = round(d * SR)
        t = np.arange(n) / SR
        x = 0.2 * np.sin(2 * np.pi * (150 + 50 * i) * t) + 0.05 * rng.standard_normal(n)
        path = folder / f"{prefix}{i}.flac"
        sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
        cuts.append(Recording.from_file(path, recording_id=f"{prefix}{i}").to_cut())
    return CutSet.from_cuts(cuts)


@pytest.fixture
def cut_factory(tmp_path):
    def factory(durations, seed=0, prefix="u"):
        return make_cuts(tmp_path / f"audio_{prefix}_{seed}", durations, seed, prefix)

    return factory
