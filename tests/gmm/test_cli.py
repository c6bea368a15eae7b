"""The entry points on stored lhotse cuts: train mono, train tri, align (and decode)."""
from __future__ import annotations

import json

import pytest

from asrkit.lang.g2p import have_espeak
from asrkit.testing.digits import VOICES, WORDS, make_digit_corpus, write_digit_cuts
from asrkit.testing.lang import write_toy_lang_dir, write_toy_word_loop_grammar

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


def test_train_and_align_cli(tmp_path, capsys):
    pytest.importorskip("asrkit.tree.build")
    from asrkit.bin import align_gmm, train_gmm

    c = make_digit_corpus(14, voices=VOICES[:2], seed=3)
    lang = write_toy_lang_dir(tmp_path / "lang", c.lexicon)
    cuts = write_digit_cuts(tmp_path / "mfcc", c, "train")
    g = write_toy_word_loop_grammar(lang, WORDS, tmp_path / "G.fst")
    assert train_gmm.main(["--type", "mono", "--cuts", str(cuts), "--lang", str(lang), "--out-dir",
                           str(tmp_path / "mono"), "--num-iters", "6", "--num-gauss", "120", "--nj", "2",
                           "--decode-cuts", str(cuts), "--G", str(g)]) == 0
    assert "%WER" in capsys.readouterr().out
    assert (tmp_path / "mono" / "decode_train" / "hyp.txt").exists()
    hist = json.loads((tmp_path / "mono" / "history.json").read_text())
    assert len(hist) == 6
    assert train_gmm.main(["--type", "tri", "--cuts", str(cuts), "--lang", str(lang), "--ali-dir",
                           str(tmp_path / "mono"), "--out-dir", str(tmp_path / "tri"), "--num-leaves", "60",
                           "--num-gauss", "150", "--num-iters", "4", "--tree-min-count", "20"]) == 0
    assert align_gmm.main(["--model", str(tmp_path / "tri" / "final.mdl"), "--cuts", str(cuts), "--lang",
                           str(lang), "--out", str(tmp_path / "ali" / "ali.pt")]) == 0
    from asrkit.gmm import load_alignments

    ali = load_alignments(tmp_path / "ali" / "ali.pt")
    assert len(ali["alis"]) == 14 and not ali["failed"]
    # up to date: a second run leaves the alignment alone; --force redoes it
    args = ["--model", str(tmp_path / "tri" / "final.mdl"), "--cuts", str(cuts), "--lang", str(lang), "--out",
            str(tmp_path / "ali" / "ali.pt")]
    before = (tmp_path / "ali" / "ali.pt").stat().st_mtime_ns
    assert align_gmm.main(args) == 0
    assert (tmp_path / "ali" / "ali.pt").stat().st_mtime_ns == before
    assert align_gmm.main(args + ["--force"]) == 0
    assert (tmp_path / "ali" / "ali.pt").stat().st_mtime_ns > before
    with pytest.raises(SystemExit):
        train_gmm.main(["--type", "tri", "--cuts", str(cuts), "--lang", str(lang), "--out-dir", str(tmp_path / "x")])
