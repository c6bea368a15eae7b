"""Speaker-disjoint, seeded splits; unlabelled sets without text; the oracle with it."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from lhotse import CutSet, SupervisionSet

from asrkit.data.split import (
    check_speaker_disjoint,
    check_speaker_lists,
    parse_proportions,
    prepare_split,
    read_speaker_lists,
    split_speakers,
)
from asrkit.testing.corpus import write_toy_corpus

PROPS = {"train_sup": 0.4, "train_unsup": 0.35, "dev": 0.1, "test": 0.15}


def test_split_speakers_counts_and_determinism():
    spks = [f"s{i:03d}" for i in range(125)]
    a = split_speakers(spks, PROPS, seed=1)
    assert [len(a[n]) for n in PROPS] == [50, 44, 12, 19]
    assert a == split_speakers(list(reversed(spks)), PROPS, seed=1)  # input order does not matter
    assert a != split_speakers(spks, PROPS, seed=2)
    check_speaker_disjoint(a)
    assert sorted(s for v in a.values() for s in v) == spks


def test_split_speakers_small_and_partial():
    a = split_speakers(["a", "b", "c", "d", "e"], PROPS, seed=0)
    assert all(len(v) >= 1 for v in a.values())  # every set gets a speaker
    assert sum(len(v) for v in a.values()) == 5
    half = split_speakers([f"s{i}" for i in range(10)], {"x": 0.3, "y": 0.2}, seed=0)
    assert [len(half["x"]), len(half["y"])] == [3, 2]
    with pytest.raises(ValueError, match="sum"):
        split_speakers(["a"], {"x": 0.7, "y": 0.7}, seed=0)


def test_speaker_lists():
    with pytest.raises(ValueError, match="two sets"):
        check_speaker_lists({"a": ["s1", "s2"], "b": ["s2"]})
    with pytest.raises(ValueError, match="not in the corpus"):
        check_speaker_lists({"a": ["s9"]}, speakers=["s1"])
    with pytest.raises(ValueError, match="share speaker"):
        check_speaker_disjoint({"a": ["s1"], "b": ["s1"]})
    assert parse_proportions("a=0.5,b=0.25") == {"a": 0.5, "b": 0.25}


def corpus(tmp_path: Path) -> Path:
    return write_toy_corpus(tmp_path / "corpus", {"all": [f"spk{i:02d}" for i in range(12)]}, unlabelled=(),
                           utts_per_speaker=2)


def read_jsonl(path: Path):
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def test_prepare_split(tmp_path):
    root = corpus(tmp_path)
    out = tmp_path / "data" / "manifests"
    prepare_split(root / "data" / "all", out, root, proportions=PROPS, seed=3,
                  kaldi_view_root=tmp_path / "data")
    speakers = {}
    for name in PROPS:
        cuts = CutSet.from_file(out / f"cuts_{name}.jsonl.gz")
        speakers[name] = {c.supervisions[0].speaker for c in cuts}
        assert (out / f"validation_{name}.txt").exists()
        assert (out / f"recordings_{name}.jsonl.gz").exists()
        assert (tmp_path / "data" / name / "wav.scp").exists()
        if name == "train_unsup":
            assert all(c.supervisions[0].text is None for c in cuts)
            assert all("text" not in s for s in read_jsonl(out / f"supervisions_{name}.jsonl.gz"))
            assert not (tmp_path / "data" / name / "text").exists()
            oracle = CutSet.from_file(out / "oracle" / f"cuts_{name}.jsonl.gz")
            assert sorted(oracle.ids) == sorted(cuts.ids)
            assert all(c.supervisions[0].text for c in oracle)
        else:
            assert all(c.supervisions[0].text for c in cuts)
            assert not (out / "oracle" / f"cuts_{name}.jsonl.gz").exists()
    check_speaker_disjoint(speakers)
    assert sum(len(v) for v in speakers.values()) == 12
    lists = read_speaker_lists(out / "split_speakers.txt")
    assert {n: set(v) for n, v in lists.items()} == speakers
    # the oracle's text is the corpus's true text
    true_text = dict(line.split(" ", 1) for line in (root / "data/all/text").read_text().splitlines())
    oracle = CutSet.from_file(out / "oracle" / "cuts_train_unsup.jsonl.gz")
    assert {c.id: c.supervisions[0].text for c in oracle} == {c.id: true_text[c.id] for c in oracle}

    # the same seed gives the same split; a re-run skips the work
    mtime = (out / "cuts_dev.jsonl.gz").stat().st_mtime_ns
    prepare_split(root / "data" / "all", out, root, proportions=PROPS, seed=3,
                  kaldi_view_root=tmp_path / "data")
    assert (out / "cuts_dev.jsonl.gz").stat().st_mtime_ns == mtime
    out2 = tmp_path / "again"
    prepare_split(root / "data" / "all", out2, root, proportions=PROPS, seed=3)
    for name in PROPS:
        assert read_jsonl(out / f"cuts_{name}.jsonl.gz") == read_jsonl(out2 / f"cuts_{name}.jsonl.gz")
    # explicit lists (here: the written assignment) reproduce it
    out3 = tmp_path / "lists"
    prepare_split(root / "data" / "all", out3, root, speaker_lists=lists)
    for name in PROPS:
        assert read_jsonl(out / f"cuts_{name}.jsonl.gz") == read_jsonl(out3 / f"cuts_{name}.jsonl.gz")


def test_split_skip_report_per_set(tmp_path):
    root = corpus(tmp_path)
    (root / "audio/all/spk05/spk05-001.flac").unlink()
    out = tmp_path / "m"
    prepare_split(root / "data" / "all", out, root, proportions=PROPS, seed=3, on_error="skip")
    owner = [n for n, v in read_speaker_lists(out / "split_speakers.txt").items() if "spk05" in v][0]
    assert "spk05-001\tmissing_audio" in (out / f"validation_{owner}.txt").read_text()
    assert "spk05-001\tmissing_audio" in (out / "validation_corpus.txt").read_text()
    others = [n for n in PROPS if n != owner]
    assert all("spk05-001" not in (out / f"validation_{n}.txt").read_text() for n in others)
    sups = SupervisionSet.from_file(out / f"supervisions_{owner}.jsonl.gz")
    assert "spk05-001" not in {s.id for s in sups}
