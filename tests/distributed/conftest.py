"""Spawns 2 gloo processes on CPU for the distributed tests; worker bodies live in dist_workers.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # spawned children inherit sys.path and import dist_workers by name


@pytest.fixture
def run_workers(tmp_path):
    from asrkit.distributed.launch import spawn_local

    def run(fn, world_size: int = 2):
        spawn_local(fn, world_size, args=(str(tmp_path),))
        return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world_size)]

    return run
