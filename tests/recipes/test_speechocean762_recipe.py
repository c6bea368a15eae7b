"""End to end: stages 0-3 of egs/speechocean762/s5 on the real corpus in ../shared (read-only)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SETS = ["train_sup", "train_unsup", "dev", "test"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, recipe_tools) -> Path:
    t = recipe_tools
    corpus = t.repo.parent / "shared" / "corpora" / "speechocean762"
    if not (corpus / "train" / "wav.scp").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared corpus is missing: {corpus}")
        pytest.skip(f"speechocean762 not found at {corpus}")
    work = t.copy_recipe(t.repo / "egs" / "speechocean762" / "s5",
                         tmp_path_factory.mktemp("egs") / "speechocean762" / "s5")
    t.run(work, "--corpus-dir", str(corpus), "--nj", "2", "--stop-stage", "3", timeout=1200)
    return work


def test_every_utterance_lands_in_one_set(recipe: Path):
    from lhotse import CutSet

    ids = {s: set(CutSet.from_file(recipe / "data" / "manifests" / f"cuts_{s}.jsonl.gz").ids) for s in SETS}
    assert sum(len(v) for v in ids.values()) == len(set().union(*ids.values()))
    skipped = (recipe / "data" / "manifests").glob("validation_*.txt")
    assert sum(len(v) for v in ids.values()) <= 2500 and sum(len(v) for v in ids.values()) > 2400, skipped


def test_features_and_lang(recipe: Path, monkeypatch):
    from lhotse import CutSet

    monkeypatch.chdir(recipe)  # feature paths in manifests are relative to the recipe, as in icefall

    cuts = CutSet.from_file(recipe / "data" / "fbank" / "cuts_dev.jsonl.gz")
    feats = next(iter(cuts)).load_features()
    assert feats.shape[1] == 64
    phones = (recipe / "data" / "lang" / "phones.txt").read_text().split()[::2]
    assert "AH" in phones and "AH0" not in phones  # stress stripped by default
    assert (recipe / "data" / "lm" / "G.fst").stat().st_size > 0
