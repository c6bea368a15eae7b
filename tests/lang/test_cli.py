"""The stage-3 entry points end to end on a tiny corpus."""
from __future__ import annotations

import subprocess
import sys

import pytest

from asrkit.bin import prepare_lang as prepare_cli
from asrkit.bin import train_lm as lm_cli
from asrkit.fst import kaldifst
from asrkit.lang.g2p import have_espeak
from asrkit.lang.lang_dir import SymbolTable


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "lexicon.txt").write_text("THE DH AH0\nTHE DH IY1\nCAT K AE1 T\nSAT S AE1 T\nDOG D AO1 G\n")
    (tmp_path / "text").write_text("u1 THE CAT SAT\nu2 THE DOG SAT\nu3 THE CAT\n")
    (tmp_path / "dev").write_text("d1 THE DOG\n")
    return tmp_path


def test_prepare_lang_cli_lexicon_and_train_lm(tiny):
    rc = prepare_cli.main(["--lexicon", str(tiny / "lexicon.txt"), "--strip-stress", "--phone-set", "cmu",
                           "--no-g2p", "--text", str(tiny / "text"), "--out-dir", str(tiny / "data")])
    assert rc == 0
    data = tiny / "data"
    for f in ["lexicon.txt", "silence_phones.txt", "nonsilence_phones.txt", "optional_silence.txt"]:
        assert (data / "local" / "dict" / f).exists()
    assert "THE DH AH\nTHE DH IY\n" in (data / "local" / "dict" / "lexicon.txt").read_text()
    assert (data / "lang" / "phones.txt").read_text() == (data / "lang_senone" / "phones.txt").read_text()
    rc = lm_cli.main(["--text", str(tiny / "text"), "--order", "2", "--words", str(data / "lang" / "words.txt"),
                      "--dev-text", str(tiny / "dev"), "--out-dir", str(data / "lm")])
    assert rc == 0
    assert (data / "lm" / "lm_2gram.arpa").exists() and (data / "lm" / "ppl_dev.txt").exists()
    g = kaldifst.StdVectorFst.read(str(data / "lm" / "G.fst"))
    assert g.num_states > 0


def test_missing_word_without_g2p_names_the_word(tiny, capsys):
    (tiny / "text").write_text("u1 THE ZEBRA\n")
    rc = prepare_cli.main(["--lexicon", str(tiny / "lexicon.txt"), "--no-g2p", "--text", str(tiny / "text"),
                           "--out-dir", str(tiny / "data")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "no pronunciation for word 'ZEBRA'" in err and "line 1" in err
    assert not (tiny / "data" / "lang").exists()


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")
def test_missing_word_gets_g2p(tiny):
    (tiny / "text").write_text("u1 THE ZEBRA\n")
    rc = prepare_cli.main(["--lexicon", str(tiny / "lexicon.txt"), "--strip-stress", "--phone-set", "cmu",
                           "--text", str(tiny / "text"), "--out-dir", str(tiny / "data")])
    assert rc == 0
    lex = (tiny / "data" / "local" / "dict" / "lexicon.txt").read_text()
    assert "\nZEBRA Z " in lex


def test_graphemic_and_cmudict_modes(tiny):
    rc = prepare_cli.main(["--graphemic", "--graphemic-vocab-size", "30", "--text", str(tiny / "text"),
                           "--out-dir", str(tiny / "g")])
    assert rc == 0 and (tiny / "g" / "local" / "graphemic.model").exists()
    words = SymbolTable.read(tiny / "g" / "lang" / "words.txt").symbols
    assert {"THE", "CAT", "SAT", "DOG", "<UNK>"} <= set(words)
    rc = prepare_cli.main(["--cmudict", "--text", str(tiny / "text"), "--out-dir", str(tiny / "c")])
    assert rc == 0
    assert "CAT K AE T" in (tiny / "c" / "local" / "dict" / "lexicon.txt").read_text()


def test_help_runs():
    for mod in ["asrkit.bin.prepare_lang", "asrkit.bin.train_lm"]:
        proc = subprocess.run([sys.executable, "-m", mod, "--help"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "usage" in proc.stdout


def test_stage3_rerun_with_another_lexicon_stops_or_redoes_with_force(tiny, capsys):
    base = ["--no-g2p", "--text", str(tiny / "text"), "--out-dir", str(tiny / "data")]
    assert prepare_cli.main(["--lexicon", str(tiny / "lexicon.txt")] + base) == 0
    other = tiny / "lexicon2.txt"
    other.write_text((tiny / "lexicon.txt").read_text().replace("DOG D AO1 G", "DOG D AA1 G"))
    capsys.readouterr()
    assert prepare_cli.main(["--lexicon", str(other)] + base) == 1
    err = capsys.readouterr().err
    assert f"input lexicon: {tiny / 'lexicon.txt'} -> {other}" in err
    assert "option --lexicon" in err and "--force" in err
    assert "D AO1 G" in (tiny / "data/local/dict/lexicon.txt").read_text()  # untouched
    assert prepare_cli.main(["--lexicon", str(other), "--force"] + base) == 0
    assert "D AA1 G" in (tiny / "data/local/dict/lexicon.txt").read_text()
    assert prepare_cli.main(["--lexicon", str(other)] + base) == 0  # done, now from these inputs
    # the LM: its training text edited in place
    lm = ["--text", str(tiny / "text"), "--words", str(tiny / "data/lang/words.txt"), "--out-dir", str(tiny / "data/lm")]
    assert lm_cli.main(lm + ["--order", "2"]) == 0
    (tiny / "text").write_text("u1 THE CAT\n")
    capsys.readouterr()
    assert lm_cli.main(lm + ["--order", "2"]) == 1
    err = capsys.readouterr().err
    assert "the LM in" in err and "input text[0]: " in err and "changed since (content differs)" in err


def test_cmu_looking_lexicon_with_stray_phones_refused_before_g2p(tiny, capsys):
    """No --phone-set: a lexicon of CMU phones plus BROKEN XX YY would get espeak G2P (a mixed set)."""
    lex = tiny / "lexicon.txt"
    lex.write_text(lex.read_text() + "BROKEN XX YY\n")
    (tiny / "text").write_text("u1 THE CAT SAT ZEBRA\n")
    rc = prepare_cli.main(["--lexicon", str(lex), "--text", str(tiny / "text"), "--out-dir", str(tiny / "data")])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"{lex}:6: phone(s) XX YY are not CMU phones" in err and "--phone-set" in err
    assert not (tiny / "data" / "lang").exists()


def test_non_utf8_text_named_by_prepare_lang_and_train_lm(tiny, capsys):
    (tiny / "text").write_bytes(b"u1 THE CAT\nu2 THE \xff DOG\n")
    rc = prepare_cli.main(["--lexicon", str(tiny / "lexicon.txt"), "--no-g2p", "--text", str(tiny / "text"),
                           "--out-dir", str(tiny / "data")])
    assert rc == 1
    assert f"{tiny / 'text'}:2: not valid UTF-8 at byte offset 18" in capsys.readouterr().err
    rc = lm_cli.main(["--text", str(tiny / "text"), "--order", "2", "--out-dir", str(tiny / "lm")])
    assert rc == 1
    assert f"{tiny / 'text'}:2: not valid UTF-8 at byte offset 18" in capsys.readouterr().err


def test_plain_text_only_by_the_explicit_option(tiny):
    (tiny / "words.txt").write_text("DOG CAT\nSAT\n")
    args = ["--lexicon", str(tiny / "lexicon.txt"), "--no-g2p", "--words-from", "text", "--text", str(tiny / "text"),
            "--out-dir", str(tiny / "data")]
    assert prepare_cli.main(args + ["--plain-text", str(tiny / "words.txt")]) == 0
    words = (tiny / "data/lang/words.txt").read_text().split()
    assert "DOG" in words and "u1" not in words
