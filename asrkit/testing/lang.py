"""Kaldi lang dirs for a small lexicon, and grammars over them, for tests and benchmarks.

:func:`write_toy_lang_dir` writes what stage 3 writes (:func:`asrkit.lang.lang_dir.write_lang_dir`: SIL
and SPN silence phones, ``<UNK>`` pronounced SPN, ``#k`` disambiguation, the three-state ``data/lang``
or one-state ``data/lang_senone`` topology) from a lexicon given as a dict, without a dict dir, G2P or
done markers. Grammars: exactly a list of sentences, or any sequence of words.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence, Union

from asrkit.fst import kaldifst
from asrkit.lang.lang_dir import DictDir, SymbolTable, lang_tables, make_lexicon_fst, write_lang_dir
from asrkit.lang.lexicon import Lexicon
from asrkit.hmm.topology import make_gmm_topo, make_senone_topo

PathLike = Union[str, Path]
#: word -> one pronunciation ("n ow") or a list of them (strings or phone lists)
LexiconLike = Mapping[str, Union[str, Sequence[Union[str, Sequence[str]]]]]

TOY_LEXICON = {"yes": ["y eh s"], "no": ["n ow"], "nope": ["n ow p"]}
TOY_SENTENCES = ["yes no", "no", "nope yes yes"]


def make_toy_dict(lexicon: LexiconLike) -> DictDir:
    """A dict dir (SIL, SPN, ``<UNK>``) for ``lexicon``; words in sorted order."""
    lex = Lexicon()
    for word in sorted(lexicon):
        prons = lexicon[word]
        for pron in [prons] if isinstance(prons, str) else prons:
            lex.add(word, pron.split() if isinstance(pron, str) else pron)
    return DictDir(lex)


def write_toy_lang_dir(out_dir: PathLike, lexicon: LexiconLike, num_states: int = 3, sil_prob: float = 0.5,
                       wdisambig_loop: bool = True) -> Path:
    """A lang dir for ``lexicon``: ``num_states`` 3 (data/lang) or 1 (data/lang_senone).

    ``wdisambig_loop=False`` leaves Kaldi's ``#0:#0`` self-loops out of L_disambig.fst, as lang dirs
    made by other tools may (the graph builder adds them itself).
    """
    out = Path(out_dir)
    dict_dir = make_toy_dict(lexicon)
    phones, words, disambig_entries, max_disambig = lang_tables(dict_dir)
    sil = [phones[p] for p in dict_dir.silence_phones]
    nonsil = [phones[p] for p in dict_dir.nonsilence_phones]
    if num_states == 3:
        topo = make_gmm_topo(nonsil, sil)
    elif num_states == 1:
        topo = make_senone_topo(sorted(sil + nonsil))
    else:
        raise ValueError(f"num_states must be 3 (data/lang) or 1 (data/lang_senone), not {num_states}")
    write_lang_dir(dict_dir, out, topo, phones, words, disambig_entries, max_disambig, sil_prob)
    if not wdisambig_loop:
        sil_disambig = f"#{max_disambig + 1}" if sil_prob > 0 else None
        Ld = make_lexicon_fst(disambig_entries, phones, words, sil_prob, dict_dir.optional_silence, sil_disambig)
        Ld.write(str(out / "L_disambig.fst"))
    return out


def _write_acceptor(lines: Sequence[str], out_fst: PathLike) -> Path:
    fst = kaldifst.compile("\n".join(lines) + "\n")
    kaldifst.arcsort(fst, sort_type="ilabel")
    fst.write(str(out_fst))
    return Path(out_fst)


def write_toy_sentence_grammar(lang_dir: PathLike, sentences: Sequence[str], out_fst: PathLike) -> Path:
    """G.fst accepting exactly ``sentences`` (uniform weights), over the lang dir's words.txt."""
    wid = SymbolTable.read(Path(lang_dir) / "words.txt")
    cost = math.log(len(sentences))
    lines, nxt, final = [], 2, 1
    for sent in sentences:
        ws = sent.split()
        if not ws:
            raise ValueError("empty sentence in a grammar")
        src = 0
        for i, w in enumerate(ws):
            dst = final if i == len(ws) - 1 else nxt
            weight = f" {cost}" if i == 0 else ""
            lines.append(f"{src} {dst} {wid[w]} {wid[w]}{weight}")
            if dst != final:
                src = dst
                nxt += 1
    lines.append(f"{final}")
    return _write_acceptor(lines, out_fst)


def write_toy_word_loop_grammar(lang_dir: PathLike, words: Sequence[str], out_fst: PathLike) -> Path:
    """G.fst: any sequence of one or more ``words`` (uniform), over the lang dir's words.txt."""
    wid = SymbolTable.read(Path(lang_dir) / "words.txt")
    c = math.log(len(words) + 1)
    lines = [f"0 1 {wid[w]} {wid[w]} {math.log(len(words))}" for w in words]
    lines += [f"1 1 {wid[w]} {wid[w]} {c}" for w in words]
    lines.append(f"1 {c}")
    return _write_acceptor(lines, out_fst)
