"""Tiny hand-made Kaldi lang directories, for tests and benchmarks only.

The real ``data/lang`` comes from :mod:`asrkit.lang`; this module writes a standard Kaldi lang dir
(``phones.txt``, ``words.txt``, ``L_disambig.fst``, ``topo``, ``phones/disambig.int``, ...) from a
small lexicon so that graph building and decoding can be tested without it, plus G.fst either from an
explicit list of sentences (an acceptor that accepts exactly them) or from an ARPA file through kaldilm.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

from asrkit.fst import kaldifst, kaldilm

PathLike = Union[str, Path]


def topo_text(phones: Sequence[int], num_states: int = 3, self_loop_prob: float = 0.5) -> str:
    """Kaldi topology text: ``num_states`` emitting left-to-right states (3 at 10 ms, 1 at 30 ms)."""
    lines = ["<Topology>", "<TopologyEntry>", "<ForPhones>", " ".join(map(str, phones)), "</ForPhones>"]
    p, q = self_loop_prob, 1.0 - self_loop_prob
    for s in range(num_states):
        lines.append(f"<State> {s} <PdfClass> {s} <Transition> {s} {p} <Transition> {s + 1} {q} </State>")
    lines.append(f"<State> {num_states} </State>")
    lines += ["</TopologyEntry>", "</Topology>", ""]
    return "\n".join(lines)


def _add_disambig(prons: List[List[str]]) -> List[List[str]]:
    """Kaldi's add_lex_disambig.pl in short: identical pronunciations and prefixes get ``#1``, ``#2`` ..."""
    counts: Dict[tuple, int] = {}
    for p in prons:
        counts[tuple(p)] = counts.get(tuple(p), 0) + 1
    prefixes = set()
    for p in prons:
        for i in range(1, len(p)):
            prefixes.add(tuple(p[:i]))
    last: Dict[tuple, int] = {}
    out = []
    for p in prons:
        t = tuple(p)
        if counts[t] > 1 or t in prefixes:
            last[t] = last.get(t, 0) + 1
            out.append(list(p) + [f"#{last[t]}"])
        else:
            out.append(list(p))
    return out


def write_lang_dir(
    out_dir: PathLike,
    lexicon: Mapping[str, Sequence[Union[str, Sequence[str]]]],
    sil_phone: str = "SIL",
    sil_prob: float = 0.5,
    num_states: int = 3,
    wdisambig_loop: bool = False,
) -> Path:
    """Write a Kaldi lang dir for ``lexicon`` (word -> pronunciations, each a phone list or string).

    ``wdisambig_loop`` adds Kaldi's ``#0:#0`` self-loop to L_disambig.fst (prepare_lang.sh does);
    without it the graph builder adds it itself.
    """
    out = Path(out_dir)
    (out / "phones").mkdir(parents=True, exist_ok=True)
    entries = []
    for w in sorted(lexicon):
        for pron in lexicon[w]:
            entries.append((w, pron.split() if isinstance(pron, str) else list(pron)))
    with_dis = _add_disambig([p for _, p in entries])
    max_dis = max([int(x[1:]) for p in with_dis for x in p if x.startswith("#")] + [0])
    real_phones = [sil_phone] + sorted({ph for _, p in entries for ph in p} - {sil_phone})
    phone_syms = ["<eps>"] + real_phones + [f"#{i}" for i in range(max_dis + 1)]
    pid = {p: i for i, p in enumerate(phone_syms)}
    words = ["<eps>"] + sorted(lexicon) + ["#0", "<s>", "</s>"]
    wid = {w: i for i, w in enumerate(words)}
    (out / "phones.txt").write_text("".join(f"{p} {i}\n" for p, i in pid.items()))
    (out / "words.txt").write_text("".join(f"{w} {i}\n" for w, i in wid.items()))
    disambig = [pid[f"#{i}"] for i in range(max_dis + 1)]
    (out / "phones" / "disambig.int").write_text("".join(f"{d}\n" for d in disambig))
    (out / "phones" / "wdisambig_phones.int").write_text(f"{pid['#0']}\n")
    (out / "phones" / "wdisambig_words.int").write_text(f"{wid['#0']}\n")
    (out / "phones" / "silence.csl").write_text(f"{pid[sil_phone]}\n")
    (out / "phones" / "optional_silence.txt").write_text(f"{sil_phone}\n")
    nonsil = [pid[p] for p in real_phones if p != sil_phone]
    (out / "phones" / "nonsilence.csl").write_text(":".join(map(str, nonsil)) + "\n")
    (out / "topo").write_text(topo_text([pid[p] for p in real_phones], num_states=num_states))
    with open(out / "lexicon.txt", "w") as f:
        for w, p in entries:
            f.write(f"{w} {' '.join(p)}\n")

    # L_disambig: 0 start, 1 loop (final), 2 after optional silence (Kaldi's make_lexicon_fst.py).
    sil_cost, nosil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)
    lines = [f"0 1 0 0 {nosil_cost}", f"0 2 {pid[sil_phone]} 0 {sil_cost}", "2 1 0 0"]
    nxt = 3
    for (w, _), pron in zip(entries, with_dis):
        src = 1
        for i, ph in enumerate(pron):
            olab = wid[w] if i == 0 else 0
            if i == len(pron) - 1:
                lines.append(f"{src} 1 {pid[ph]} {olab} {nosil_cost}")
                lines.append(f"{src} 2 {pid[ph]} {olab} {sil_cost}")
            else:
                lines.append(f"{src} {nxt} {pid[ph]} {olab}")
                src = nxt
                nxt += 1
    if wdisambig_loop:
        lines.append(f"1 1 {pid['#0']} {wid['#0']}")
    lines.append("1")
    fst = kaldifst.compile("\n".join(lines) + "\n")
    kaldifst.arcsort(fst, sort_type="olabel")
    fst.write(str(out / "L_disambig.fst"))
    return out


def read_symbols(path: PathLike) -> Dict[str, int]:
    table = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            s, i = line.split()
            table[s] = int(i)
    return table


def write_sentence_grammar(lang_dir: PathLike, sentences: Sequence[str], out_fst: PathLike) -> Path:
    """G.fst accepting exactly ``sentences`` (uniform weights), over the lang dir's words.txt."""
    wid = read_symbols(Path(lang_dir) / "words.txt")
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
    fst = kaldifst.compile("\n".join(lines) + "\n")
    kaldifst.arcsort(fst, sort_type="ilabel")
    fst.write(str(out_fst))
    return Path(out_fst)


def arpa_to_g(arpa: PathLike, words_txt: PathLike, out_fst: PathLike) -> Path:
    """G.fst from an ARPA LM with kaldilm (``#0`` on backoff arcs, <s>/</s> as epsilons)."""
    text = kaldilm.arpa2fst(str(arpa), disambig_symbol="#0", read_symbol_table=str(words_txt))
    fst = kaldifst.compile(text)
    kaldifst.arcsort(fst, sort_type="ilabel")
    fst.write(str(out_fst))
    return Path(out_fst)


TOY_LEXICON = {"yes": ["y eh s"], "no": ["n ow"], "nope": ["n ow p"]}
TOY_SENTENCES = ["yes no", "no", "nope yes yes"]


def toy_model(lang_dir: PathLike, context_width: int = 1):
    """Stand-in model for a toy lang dir: monophone tree, or widened to N=3/P=1."""
    from asrkit.hmm import model_from_tree_and_topo, monophone_tree, read_topo, widen_monophone_tree

    topo = read_topo(Path(lang_dir) / "topo")
    tree = monophone_tree(topo)
    if context_width == 3:
        tree = widen_monophone_tree(tree, 3, 1)
    elif context_width != 1:
        raise ValueError("context_width 1 or 3")
    return model_from_tree_and_topo(tree, topo)


def oracle_alignment(model, lang_dir: PathLike, sentence: str, num_frames: int, seed: int = 0) -> List[int]:
    """A random transition-id path of ``num_frames`` frames through the training graph of ``sentence``."""
    from asrkit.graph.hclg import Lang
    from asrkit.fst import kaldi_hmm_gmm

    lang = Lang.read(lang_dir)
    tgc = kaldi_hmm_gmm.TrainingGraphCompiler(model.transition_model, model.tree, lang.L, lang.disambig_phones,
                                              kaldi_hmm_gmm.TrainingGraphCompilerOptions())
    fst = tgc.compile_graph_from_text([lang.words[w] for w in sentence.split()])
    ok, path = kaldifst.equal_align(fst, num_frames, seed)
    if not ok:
        raise ValueError(f"no {num_frames}-frame path for {sentence!r}")
    ok, tids, _, _ = kaldifst.get_linear_symbol_sequence(path)
    return list(tids)


def oracle_scores(tid2pdf, tids: Sequence[int], num_pdfs: int, off: float = -8.0, seed: Optional[int] = None):
    """[T, num_pdfs] scores: 0 for the pdf of each frame's transition id, ``off`` elsewhere (plus noise)."""
    import numpy as np

    tids = np.asarray(tids, dtype=np.int64)
    if seed is None:
        sc = np.full((len(tids), num_pdfs), off, dtype=np.float32)
    else:
        rng = np.random.default_rng(seed)
        sc = (off + rng.standard_normal((len(tids), num_pdfs))).astype(np.float32)
    sc[np.arange(len(tids)), np.asarray(tid2pdf)[tids]] = 0.0
    return sc
