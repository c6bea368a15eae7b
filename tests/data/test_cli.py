"""The entry points: --help, the synthetic layout through prepare_manifests, split_corpus, exit codes."""
from __future__ import annotations

import subprocess
import sys

import pytest
from lhotse import CutSet

from asrkit.bin import prepare_manifests, split_corpus
from asrkit.testing.corpus import write_toy_corpus


@pytest.fixture(autouse=True)
def quiet_logging(monkeypatch):
    # the mains point logging at the stderr they find; pytest's capture closes it afterwards
    for mod in (prepare_manifests, split_corpus):
        monkeypatch.setattr(mod, "setup_logging", lambda verbose=False: None)


@pytest.mark.parametrize("tool", ["prepare_manifests", "split_corpus", "download"])
def test_help(tool, repo_root):
    out = subprocess.run([sys.executable, "-m", f"asrkit.bin.{tool}", "--help"], cwd=repo_root,
                         capture_output=True, text=True, check=True).stdout
    assert "usage" in out


def test_prepare_manifests_synthetic_layout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_toy_corpus(tmp_path / "corpus", {"train_sup": ["a", "b"], "train_unsup": ["c"], "dev": ["d"]})
    common = ["--audio-root", "corpus", "--out", "data/manifests"]
    assert prepare_manifests.main(["--data-dir", "corpus/data/train_sup", "--set", "train_sup"] + common) == 0
    assert prepare_manifests.main(["--data-dir", "corpus/data/train_unsup", "--set", "train_unsup",
                                   "--labelled", "false", "--oracle-text", "corpus/oracle/train_unsup/text"]
                                  + common) == 0
    m = tmp_path / "data" / "manifests"
    for s in ("train_sup", "train_unsup"):
        for f in (f"recordings_{s}.jsonl.gz", f"supervisions_{s}.jsonl.gz", f"cuts_{s}.jsonl.gz",
                  f"validation_{s}.txt", f".cuts_{s}.jsonl.gz.done"):
            assert (m / f).exists(), f
        assert (tmp_path / "data" / s / "wav.scp").exists()
    sup = CutSet.from_file(m / "cuts_train_sup.jsonl.gz")[0].supervisions[0]
    assert sup.text and sup.custom["condition"] and sup.alignment["phone"]
    assert all(c.supervisions[0].text is None for c in CutSet.from_file(m / "cuts_train_unsup.jsonl.gz"))
    assert all(c.supervisions[0].text for c in CutSet.from_file(m / "oracle" / "cuts_train_unsup.jsonl.gz"))
    assert not (tmp_path / "data" / "train_unsup" / "text").exists()
    # done: a re-run does nothing
    mtime = (m / "cuts_train_sup.jsonl.gz").stat().st_mtime_ns
    assert prepare_manifests.main(["--data-dir", "corpus/data/train_sup", "--set", "train_sup"] + common) == 0
    assert (m / "cuts_train_sup.jsonl.gz").stat().st_mtime_ns == mtime
    # bad data: exit code 1 and nothing written; skip mode writes the report
    (tmp_path / "corpus/audio/dev/d/d-000.flac").unlink()
    assert prepare_manifests.main(["--data-dir", "corpus/data/dev", "--set", "dev"] + common) == 1
    assert not (m / "cuts_dev.jsonl.gz").exists()
    assert prepare_manifests.main(["--data-dir", "corpus/data/dev", "--set", "dev", "--on-error", "skip"]
                                  + common) == 0
    assert "d-000\tmissing_audio" in (m / "validation_dev.txt").read_text()


def test_split_corpus_cli(tmp_path):
    root = write_toy_corpus(tmp_path / "corpus", {"train": [f"s{i}" for i in range(10)]}, unlabelled=())
    out = tmp_path / "data" / "manifests"
    assert split_corpus.main(["--corpus-dir", str(root), "--data-dir", str(root / "data/train"),
                              "--out", str(out), "--seed", "5",
                              "--proportions", "train_sup=0.5,train_unsup=0.3,dev=0.2"]) == 0
    assert (out / "oracle" / "cuts_train_unsup.jsonl.gz").exists()
    assert (tmp_path / "data" / "dev" / "wav.scp").exists()
    assert not (out / "cuts_test.jsonl.gz").exists()
    assert split_corpus.main(["--corpus-dir", str(tmp_path / "nothing"), "--out", str(out)]) == 1


def test_stage1_rerun_with_another_data_dir_stops_or_redoes_with_force(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    write_toy_corpus(tmp_path / "corpus", {"train_sup": ["a", "b"], "dev": ["d"]})
    common = ["--audio-root", "corpus", "--out", "data/manifests", "--set", "train_sup"]
    assert prepare_manifests.main(["--data-dir", "corpus/data/train_sup"] + common) == 0
    cuts = tmp_path / "data/manifests/cuts_train_sup.jsonl.gz"
    before = cuts.read_bytes()
    caplog.clear()
    assert prepare_manifests.main(["--data-dir", "corpus/data/dev"] + common) == 1
    assert "manifests of train_sup in data/manifests: done, but from other inputs" in caplog.text
    assert "option --data-dir: 'corpus/data/train_sup' -> 'corpus/data/dev'" in caplog.text
    assert "input data_dir: corpus/data/train_sup -> corpus/data/dev" in caplog.text
    assert cuts.read_bytes() == before
    assert prepare_manifests.main(["--data-dir", "corpus/data/dev", "--force"] + common) == 0
    assert {c.supervisions[0].speaker for c in CutSet.from_file(cuts)} == {"d"}
    # an edit of the data dir in place is a change too
    with open("corpus/data/dev/text", "a") as f:
        f.write("")
    assert prepare_manifests.main(["--data-dir", "corpus/data/dev"] + common) == 0  # same content
    t = tmp_path / "corpus/data/dev/text"
    t.write_text(t.read_text().replace(" ", "  ", 1))
    caplog.clear()
    assert prepare_manifests.main(["--data-dir", "corpus/data/dev"] + common) == 1
    assert "input data_dir: corpus/data/dev changed since" in caplog.text


def test_every_utterance_bad_under_skip_fails_and_marks_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    write_toy_corpus(tmp_path / "corpus", {"dev": ["d"]})
    for f in (tmp_path / "corpus/audio/dev/d").glob("*.flac"):
        f.unlink()
    argv = ["--data-dir", "corpus/data/dev", "--set", "dev", "--audio-root", "corpus", "--out", "data/manifests",
            "--on-error", "skip"]
    assert prepare_manifests.main(argv) == 1
    assert "set dev: no valid utterance" in caplog.text and "missing_audio=" in caplog.text
    assert not list((tmp_path / "data/manifests").glob(".*.done"))
    assert not (tmp_path / "data/manifests/cuts_dev.jsonl.gz").exists()
