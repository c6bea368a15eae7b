"""End to end: stages 0-3 of egs/synth/s5 on a tiny synthetic corpus, then a resumed re-run."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SETS = ["train_sup", "train_unsup", "dev", "test_clean", "test_noisy"]


def run_recipe(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=900,
                          # path.sh finds the repository through ASRKIT_ROOT when the recipe lives elsewhere.
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "ASRKIT_ROOT": str(REPO)})
    assert proc.returncode == 0, f"run.sh {' '.join(args)} failed:\n{proc.stderr[-4000:]}"
    return proc


def read_jsonl_gz(path: Path) -> list:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A copy of the recipe in a temporary folder (outputs stay out of the checkout)."""
    root = REPO
    work = tmp_path_factory.mktemp("egs") / "synth" / "s5"
    work.parent.mkdir(parents=True)
    shutil.copytree(root / "egs" / "synth" / "s5", work, symlinks=True,
                    ignore=shutil.ignore_patterns("corpus", "data", "exp"))
    (work / "utils").unlink()
    (work / "utils").symlink_to(root / "utils")
    run_recipe(work, "--tiny", "true", "--nj", "2", "--stop-stage", "3")
    return work


def test_stage0_corpus(recipe: Path):
    for s in SETS:
        assert (recipe / "corpus" / "data" / s / "wav.scp").stat().st_size > 0
    assert not (recipe / "corpus" / "data" / "train_unsup" / "text").exists()
    assert (recipe / "corpus" / "oracle" / "train_unsup" / "text").stat().st_size > 0


def test_stage1_manifests(recipe: Path):
    man = recipe / "data" / "manifests"
    for s in SETS:
        cuts = read_jsonl_gz(man / f"cuts_{s}.jsonl.gz")
        assert cuts, s
        texts = [sup.get("text") for c in cuts for sup in c["supervisions"]]
        if s == "train_unsup":
            assert all(not t for t in texts), "unlabelled cuts must carry no transcript"
        else:
            assert all(texts), s
    oracle = read_jsonl_gz(man / "oracle" / "cuts_train_unsup.jsonl.gz")
    assert all(sup["text"] for c in oracle for sup in c["supervisions"])
    speakers = {s: {sup["speaker"] for c in read_jsonl_gz(man / f"cuts_{s}.jsonl.gz") for sup in c["supervisions"]}
                for s in SETS}
    for i, a in enumerate(SETS):
        for b in SETS[i + 1:]:
            assert not speakers[a] & speakers[b], (a, b)


def test_stage2_features(recipe: Path, monkeypatch):
    from lhotse import CutSet

    monkeypatch.chdir(recipe)  # feature paths in manifests are relative to the recipe, as in icefall

    from asrkit.features import FeatureReader, num_stacked_frames

    reader = FeatureReader(recipe / "data" / "cmvn.npz")
    for s in SETS:
        cuts = CutSet.from_file(recipe / "data" / "fbank" / f"cuts_{s}.jsonl.gz")
        cut = next(iter(cuts))
        x = reader(cut)
        assert x.shape == (num_stacked_frames(cut.num_frames), 192)
    mfcc = CutSet.from_file(recipe / "data" / "mfcc" / "cuts_train_sup.jsonl.gz")
    assert next(iter(mfcc)).load_features().shape[1] == 13


def test_stage3_lang_and_lm(recipe: Path):
    data = recipe / "data"
    for lang in ("lang", "lang_senone"):
        for f in ("phones.txt", "words.txt", "L.fst", "L_disambig.fst", "topo", "oov.txt"):
            assert (data / lang / f).stat().st_size > 0, (lang, f)
    assert (data / "lang" / "phones.txt").read_bytes() == (data / "lang_senone" / "phones.txt").read_bytes()
    assert (data / "lm" / "G.fst").stat().st_size > 0


def test_rerun_skips_finished_stages(recipe: Path):
    before = {p: p.stat().st_mtime_ns for p in (recipe / "data").rglob("*.jsonl.gz")}
    run_recipe(recipe, "--tiny", "true", "--nj", "2", "--stage", "1", "--stop-stage", "3")
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after, "a re-run rewrote finished outputs"
