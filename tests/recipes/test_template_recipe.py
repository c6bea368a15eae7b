"""End to end: egs/TEMPLATE/s5 (copied as a user would, to egs/mycorpus/s5) on a tiny synthetic corpus
given as one Kaldi data dir with no lexicon (--lexicon-type graphemic): the speaker split, stages 2-16
of utils/shared_stages.sh with the GMM and network sizes of --tiny (stages 14-15 off), and clear
errors for missing input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SETS = ["train_sup", "train_unsup", "dev", "test"]


def copy_template(recipe_tools, base: Path) -> Path:
    """The template copied as a user would, to egs/mycorpus/s5."""
    return recipe_tools.copy_recipe(recipe_tools.repo / "egs" / "TEMPLATE" / "s5", base / "egs" / "mycorpus" / "s5")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, recipe_tools) -> Path:
    """A tiny synthetic corpus, all of its sets merged into one transcribed Kaldi data dir ``all/``."""
    repo = recipe_tools.repo
    root = tmp_path_factory.mktemp("corpus")
    proc = subprocess.run([sys.executable, str(repo / "local" / "make_synth_corpus.py"),
                           "--tiny", "--nj", "2", "--no-progress", str(root)], capture_output=True, text=True,
                          env={**recipe_tools.env, "PYTHONPATH": str(repo)}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = {"wav.scp": [], "text": [], "utt2spk": []}
    for s in ("train_sup", "train_unsup", "dev", "test_clean", "test_noisy"):
        for name in tables:
            f = root / "data" / s / name
            tables[name] += (f if f.exists() else root / "oracle" / s / name).read_text().splitlines()
    (root / "all").mkdir()
    for name, lines in tables.items():
        (root / "all" / name).write_text("".join(line + "\n" for line in sorted(lines)))
    return root


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, corpus, recipe_tools) -> Path:
    work = copy_template(recipe_tools, tmp_path_factory.mktemp("user"))
    recipe_tools.run(work, "--data-dir", str(corpus / "all"), "--audio-root", str(corpus), "--lexicon-type",
                     "graphemic", "--graphemic-vocab-size", "60", "--lm-text", str(corpus / "lm_text.txt"), "--tiny",
                     "true", "--nj", "2")
    return work


def test_split_is_speaker_disjoint_and_unlabelled_text_only_in_oracle(recipe: Path, corpus: Path, recipe_tools):
    man = recipe / "data" / "manifests"
    cuts = {s: recipe_tools.read_jsonl_gz(man / f"cuts_{s}.jsonl.gz") for s in SETS}
    total = len((corpus / "all" / "text").read_text().splitlines())
    assert sum(len(c) for c in cuts.values()) == total
    spk = {s: {sup["speaker"] for c in cs for sup in c["supervisions"]} for s, cs in cuts.items()}
    for i, a in enumerate(SETS):
        assert spk[a], a
        for b in SETS[i + 1:]:
            assert not spk[a] & spk[b], (a, b)
    assert all(not sup.get("text") for c in cuts["train_unsup"] for sup in c["supervisions"])
    oracle = recipe_tools.read_jsonl_gz(man / "oracle" / "cuts_train_unsup.jsonl.gz")
    assert len(oracle) == len(cuts["train_unsup"]) and all(c["supervisions"][0]["text"] for c in oracle)


def test_graphemic_lexicon(recipe: Path):
    assert (recipe / "data" / "local" / "graphemic.model").stat().st_size > 0
    assert "graphemic lexicon" in (recipe / "data" / "local" / "dict_report.txt").read_text()
    lex = (recipe / "data" / "local" / "dict" / "lexicon.txt").read_text().splitlines()
    assert any(line.split()[0] == "DOG" for line in lex)  # a word of --lm-text joined the vocabulary


def test_every_system_decoded_and_reported(recipe: Path, recipe_tools):
    systems = ("mono", "tri", "teacher", "student_sup", "student_ssl_inter", "student_ssl_seg", "student_oracle")
    for sys in systems:
        for s in ("dev", "test"):
            recipe_tools.checked_wer(recipe / "exp" / sys / f"decode_{s}", recipe / "data" / s / "text")
    index = json.loads((recipe / "exp" / "pseudo" / "index.json").read_text())
    assert index["num_cuts"] == len(recipe_tools.read_jsonl_gz(recipe / "data" / "fbank" / "cuts_train_unsup.jsonl.gz"))
    report = (recipe / "RESULTS.md").read_text()
    assert report.startswith("# mycorpus results")
    for sys in systems:
        assert f"(`{sys}`)" in report, sys
    assert not (recipe / "exp" / "sweep").exists() and not list((recipe / "exp").glob("dist_*"))


def test_missing_inputs_get_clear_messages(tmp_path, corpus, recipe_tools):
    run = recipe_tools.run  # check=False: each of these must fail
    work = copy_template(recipe_tools, tmp_path)
    proc = run(work, "--data-dir", str(tmp_path / "nowhere"), "--lexicon-type", "graphemic", check=False)
    assert proc.returncode != 0 and f"no {tmp_path / 'nowhere'}/wav.scp" in proc.stderr
    proc = run(work, "--data-dir", str(corpus / "all"), check=False)
    assert proc.returncode != 0 and "--lexicon-type lexicon needs --lexicon FILE" in proc.stderr
    proc = run(work, "--data-dir", str(corpus / "all"), "--lexicon", str(tmp_path / "lex.txt"), check=False)
    assert proc.returncode != 0 and f"lexicon not found: {tmp_path / 'lex.txt'}" in proc.stderr


def test_changed_inputs_after_a_done_stage_stop_the_recipe_or_force_redoes(tmp_path, corpus, recipe_tools):
    """Stage 1 re-run with another --data-dir, stage 3 with another lexicon option: each says what
    changed and stops non-zero; --force true redoes the stage."""
    run = recipe_tools.run
    work = copy_template(recipe_tools, tmp_path)
    other = tmp_path / "all2"
    other.mkdir()
    for name in ("wav.scp", "text", "utt2spk"):  # the corpus without its last utterance
        lines = (corpus / "all" / name).read_text().splitlines()
        (other / name).write_text("".join(line + "\n" for line in lines[:-1]))
    common = ["--audio-root", str(corpus), "--lexicon-type", "graphemic", "--graphemic-vocab-size", "60",
              "--on-error", "skip"]
    run(work, "--stage", "0", "--stop-stage", "1", "--data-dir", str(corpus / "all"), *common)
    split = (work / "data/manifests/split_speakers.txt").read_text()
    proc = run(work, "--stage", "1", "--stop-stage", "1", "--data-dir", str(other), *common, check=False)
    assert proc.returncode != 0
    assert f"option --data-dir: '{corpus / 'all'}' -> '{other}'" in proc.stderr
    assert "--force" in proc.stderr
    assert (work / "data/manifests/split_speakers.txt").read_text() == split  # nothing rewritten
    run(work, "--stage", "1", "--stop-stage", "1", "--data-dir", str(other), "--force", "true", *common)
    assert f"split of {other}" in (work / "data/manifests/split_speakers.txt").read_text()
    run(work, "--stage", "1", "--stop-stage", "1", "--data-dir", str(other), *common)  # done, same inputs
    run(work, "--stage", "3", "--stop-stage", "3", "--data-dir", str(other), *common)
    proc = run(work, "--stage", "3", "--stop-stage", "3", "--data-dir", str(other), *common,
               "--graphemic-vocab-size", "50", check=False)
    assert proc.returncode != 0 and "option --graphemic-vocab-size: 60 -> 50" in proc.stderr
