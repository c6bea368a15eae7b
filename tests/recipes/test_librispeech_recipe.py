"""End to end: egs/librispeech/s5 --tiny true on a synthetic corpus in LibriSpeech's layout (FLAC files
and trans.txt per chapter, all seven subsets, an LM text), through the same stage-0/1 code as the real
corpus (lhotse's LibriSpeech recipe, then validation), CMUdict + G2P, the LM-text path, GMMs, senones,
teacher, supervised student, pseudo-labelling, the semi-supervised and oracle students (stages 0-13),
then the report (16): every stage of the default run. The optional stages 14 (--sweep) and 15 (--dist)
are the same shared functions in every recipe; egs/synth/s5's and egs/TEMPLATE/s5's tests run them."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SETS = ["train_sup", "train_unsup", "dev_clean", "dev_other", "test_clean", "test_other"]
EVAL = ["dev_clean", "dev_other", "test_clean", "test_other"]
SUBSETS = {"train_sup": ["train-clean-100"], "train_unsup": ["train-clean-360", "train-other-500"],
           "dev_clean": ["dev-clean"], "dev_other": ["dev-other"], "test_clean": ["test-clean"],
           "test_other": ["test-other"]}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, recipe_tools) -> Path:
    t = recipe_tools
    work = t.copy_recipe(t.repo / "egs" / "librispeech" / "s5", tmp_path_factory.mktemp("egs") / "librispeech" / "s5")
    t.run(work, "--tiny", "true", "--stop-stage", "16")
    return work


def test_stage0_librispeech_layout(recipe: Path):
    root = recipe / "corpus" / "LibriSpeech"
    tiny = json.loads((recipe / "corpus" / "tiny.json").read_text())["subsets"]
    assert sorted(tiny) == sorted(s for v in SUBSETS.values() for s in v)
    for subset, stats in tiny.items():
        flacs = sorted((root / subset).rglob("*.flac"))
        assert len(flacs) == stats["utterances"] > 0, subset
        for flac in flacs:
            spk, chapter, utt = flac.stem.split("-")
            assert flac.parent == root / subset / spk / chapter and re.fullmatch(r"\d{4}", utt), flac
            trans = flac.parent / f"{spk}-{chapter}.trans.txt"
            assert re.search(rf"^{flac.stem} [A-Z' ]+$", trans.read_text(), re.M), trans
    import soundfile as sf

    info = sf.info(str(next(root.rglob("*.flac"))))
    assert info.format == "FLAC" and info.samplerate == 16000


def test_stage1_sets_from_lhotse_recipe(recipe: Path, recipe_tools):
    tiny = json.loads((recipe / "corpus" / "tiny.json").read_text())["subsets"]
    man = recipe / "data" / "manifests"
    speakers = {}
    for s in SETS:
        cuts = recipe_tools.read_jsonl_gz(man / f"cuts_{s}.jsonl.gz")
        assert len(cuts) == sum(tiny[p]["utterances"] for p in SUBSETS[s]), s
        texts = [sup.get("text") for c in cuts for sup in c["supervisions"]]
        assert all(not t for t in texts) if s == "train_unsup" else all(texts), s
        speakers[s] = {sup["speaker"] for c in cuts for sup in c["supervisions"]}
    for i, a in enumerate(SETS):
        for b in SETS[i + 1:]:
            assert not speakers[a] & speakers[b], (a, b)
    oracle = recipe_tools.read_jsonl_gz(man / "oracle" / "cuts_train_unsup.jsonl.gz")
    assert all(sup["text"] for c in oracle for sup in c["supervisions"])
    assert not (recipe / "data" / "train_unsup" / "text").exists()


def test_stage3_cmudict_lexicon_and_lm_text(recipe: Path):
    from asrkit.lang.lexicon import CMU_PHONES

    phones = {line.split()[0] for line in (recipe / "data" / "lang" / "phones.txt").read_text().splitlines()}
    assert set(CMU_PHONES) - phones == set() or len(set(CMU_PHONES) & phones) > 30
    assert "AH0" not in phones
    assert "cmudict" in (recipe / "data" / "local" / "dict_report.txt").read_text()
    # the LM corpus was used: its sample and vocabulary, and a dev perplexity
    assert len((recipe / "data" / "local" / "lm_text.txt").read_text().splitlines()) == 500
    words = {line.split()[0] for line in (recipe / "data" / "lang" / "words.txt").read_text().splitlines()}
    vocab = set((recipe / "data" / "local" / "lm_vocab.txt").read_text().split())
    assert vocab <= words
    assert (recipe / "data" / "lm" / "G.fst").stat().st_size > 0


def test_gmm_and_network_decodes_every_set(recipe: Path, recipe_tools):
    for sys in ("mono", "tri", "teacher", "student_sup"):
        for s in EVAL:
            recipe_tools.checked_wer(recipe / "exp" / sys / f"decode_{s}", recipe / "data" / s / "text")
    # test_other takes its LM weight from dev_other, test_clean from dev_clean
    for test, dev in (("test_other", "dev_other"), ("test_clean", "dev_clean")):
        w = (recipe / "exp" / "tri" / f"decode_{dev}" / "best_wer").read_text().split()[-1].rsplit("_", 1)[1]
        assert (recipe / "exp" / "tri" / f"decode_{test}" / f"wer_{w}").exists(), (test, dev, w)


def test_stage10_pseudo_labels_cover_both_unlabelled_subsets(recipe: Path, recipe_tools):
    index = json.loads((recipe / "exp" / "pseudo" / "index.json").read_text())
    cuts = recipe_tools.read_jsonl_gz(recipe / "data" / "fbank" / "cuts_train_unsup.jsonl.gz")
    assert index["num_cuts"] == len(cuts) and index["k"] == 20


def test_stages11_13_students_on_the_unlabelled_subsets(recipe: Path, recipe_tools):
    for sys in ("student_ssl_inter", "student_ssl_seg", "student_oracle"):
        assert (recipe / "exp" / sys / "best.pt").exists(), sys
        for s in EVAL:
            recipe_tools.checked_wer(recipe / "exp" / sys / f"decode_{s}", recipe / "data" / s / "text")
    # the oracle's second labelled set is train_unsup with the transcripts of the oracle manifest
    oracle = recipe_tools.read_jsonl_gz(recipe / "exp" / "senone" / "cuts_train_unsup_oracle.jsonl.gz")
    unsup = recipe_tools.read_jsonl_gz(recipe / "data" / "fbank" / "cuts_train_unsup.jsonl.gz")
    assert 0 < len(oracle) <= len(unsup)


def test_stage16_report_and_finished_training_not_relaunched(recipe: Path, recipe_tools):
    report = (recipe / "RESULTS.md").read_text()
    # test sets first, the dev (tuning) sets last, then the updates
    assert "| system | test_clean | test_other | dev_clean (tuning) | dev_other (tuning) | updates |" in report
    assert "| `student_ssl_inter` | test_other |" in report  # the comparison with the supervised student
    row = next(line for line in report.splitlines() if "(`teacher`)" in line)
    assert row.split("|")[2].strip() == f"{recipe_tools.best_wer(recipe / 'exp' / 'teacher' / 'decode_test_clean'):.2f}"
    assert row.split("|")[4].strip() == f"{recipe_tools.best_wer(recipe / 'exp' / 'teacher' / 'decode_dev_clean'):.2f}"
    best = recipe / "exp" / "teacher" / "best.pt"
    before = best.stat().st_mtime_ns
    proc = recipe_tools.run(recipe, "--tiny", "true", "--stage", "7", "--stop-stage", "7")
    assert "exp/teacher is trained: skipping" in proc.stderr
    assert best.stat().st_mtime_ns == before
