"""Scoring: exact error counts, Kaldi formats, bootstrap CI, normalisation, missing hypotheses."""
from __future__ import annotations

import re
import subprocess
import sys

from asrkit.decode.score import (compute_wer, format_per_utt, make_normalizer, read_best_weight,
                                 write_best_wer, write_wer_files)


def test_exact_counts():
    refs = {"a": "the cat sat on the mat".split(), "b": "hello world".split(), "c": "one two three".split()}
    hyps = {"a": "the cat sit on mat".split(),  # 1 sub, 1 del
            "b": "hello big world again".split(),  # 2 ins
            "c": "one two three".split()}
    r = compute_wer(refs, hyps)
    assert (r.ins, r.dels, r.subs, r.ref_words) == (2, 1, 1, 11)
    assert (r.sentences, r.sentence_errors) == (3, 2)
    assert abs(r.wer - 100 * 4 / 11) < 1e-9


def test_wer_file_format(tmp_path):
    r = compute_wer({"a": "x y z w".split(), "b": ["q"]}, {"a": "x k z".split(), "b": ["q"]})
    p = write_wer_files(r, tmp_path, 10)
    assert p.name == "wer_10"
    lines = p.read_text().splitlines()
    assert lines[0] == "%WER 40.00 [ 2 / 5, 0 ins, 1 del, 1 sub ]"
    assert lines[1] == "%SER 50.00 [ 1 / 2 ]"
    assert lines[2] == "Scored 2 sentences, 0 not present in hyp."
    assert re.match(r"%CI95 \[ -?\d+\.\d\d, \d+\.\d\d \]", lines[3])
    per = (tmp_path / "per_utt_10").read_text().splitlines()
    assert per[0].split() == ["a", "ref", "x", "y", "z", "w"]
    assert per[1].split() == ["a", "hyp", "x", "k", "z", "***"]
    assert per[2].split() == ["a", "op", "C", "S", "C", "D"]
    assert per[3] == "a #csid 2 1 0 1"
    write_best_wer({10: r, 12: compute_wer({"a": ["x"]}, {"a": ["x"]})}, tmp_path)
    best = (tmp_path / "best_wer").read_text()
    assert best.startswith("%WER 0.00 [ 0 / 1,") and best.strip().endswith("wer_12")
    assert read_best_weight(tmp_path / "best_wer") == 12.0


def test_bootstrap_ci_contains_point_estimate():
    refs = {f"u{i}": "a b c d e".split() for i in range(40)}
    hyps = {f"u{i}": ("a b c d e" if i % 3 else "a x c e").split() for i in range(40)}
    r = compute_wer(refs, hyps, replications=500, seed=3)
    lo, hi = r.ci95
    assert lo <= r.wer <= hi and hi - lo > 0


def test_normalizer_applies_to_both_sides():
    norm = make_normalizer(uppercase=True)
    r = compute_wer({"a": "Hello <unk> World".split()}, {"a": "HELLO world <UNK> [noise]".split()}, norm)
    assert r.errors == 0 and r.ref_words == 2
    assert r.per_utt[0].ref == ["HELLO", "WORLD"] and r.per_utt[0].hyp == ["HELLO", "WORLD"]
    r = compute_wer({"a": "Hello".split()}, {"a": "hello".split()})
    assert r.subs == 1


def test_missing_hypothesis_counts_as_deletions(tmp_path):
    r = compute_wer({"a": "x y".split(), "b": "p q r".split()}, {"a": "x y".split(), "z": ["extra"]})
    assert r.missing == ["b"] and r.extra == ["z"]
    assert (r.dels, r.ins, r.subs, r.ref_words, r.sentence_errors) == (3, 0, 0, 5, 1)
    assert "1 not present in hyp" in r.format()
    assert "(no hypothesis)" in format_per_utt(r)
    write_wer_files(r, tmp_path)
    assert (tmp_path / "missing").read_text() == "b\n"


def test_score_cli(tmp_path):
    (tmp_path / "ref").write_text("a the cat\nb <UNK> dog\n")
    (tmp_path / "hyp").write_text("a THE cat\nb dog\n")
    r = subprocess.run([sys.executable, "-m", "asrkit.bin.score", "--ref", str(tmp_path / "ref"), "--hyp",
                        str(tmp_path / "hyp"), "--out-dir", str(tmp_path / "out"), "--upper"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("%WER 0.00 [ 0 / 3, 0 ins, 0 del, 0 sub ]")
    assert (tmp_path / "out" / "wer").exists() and (tmp_path / "out" / "per_utt").exists()
