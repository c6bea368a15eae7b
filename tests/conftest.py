"""Shared fixtures: where the repository and the shared corpora are; one torch thread for tiny models."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = REPO_ROOT / "tests"
#: test directories whose models are tiny: they run on one torch thread
ONE_TORCH_THREAD_DIRS = {"infer", "nnet"}
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


@pytest.fixture(autouse=True)
def _one_torch_thread(request):
    """Tiny models gain nothing from threads, and on a shared 2-core box they lose a lot to contention."""
    test_dir = Path(request.node.path).resolve().relative_to(TESTS_DIR).parts[0]
    if test_dir not in ONE_TORCH_THREAD_DIRS:
        yield
        return
    import torch  # here: the other tests need not import it

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
