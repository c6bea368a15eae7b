"""Shared fixtures: where the repository and the shared corpora are."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEECHOCEAN_DIR = REPO_ROOT.parent / "shared" / "corpora" / "speechocean762"


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def speechocean_dir() -> Path:
    """The read-only speechocean762 corpus: skipped with a reason where absent, required on CI."""
    if not (SPEECHOCEAN_DIR / "train" / "wav.scp").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared corpus is missing: {SPEECHOCEAN_DIR}")
        pytest.skip(f"speechocean762 not found at {SPEECHOCEAN_DIR} (a user's clone has no shared/)")
    return SPEECHOCEAN_DIR
