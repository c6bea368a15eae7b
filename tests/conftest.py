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


#: the end-to-end recipe modules, longest first (seconds on 2 idle cores, from CI's --durations): they
#: start first, so that with ``pytest -n 2 --dist loadfile`` (tools/test.sh) no long module is left for
#: the end while the other worker idles
LONG_MODULES = ["recipes/test_synth_recipe.py", "recipes/test_librispeech_recipe.py",
                "recipes/test_template_recipe.py", "recipes/test_speechocean762_recipe.py"]


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        rel = Path(item.path).resolve().relative_to(TESTS_DIR).as_posix()
        return LONG_MODULES.index(rel) if rel in LONG_MODULES else len(LONG_MODULES)

    items.sort(key=rank)  # stable: every module keeps its own order, the rest their collection order
