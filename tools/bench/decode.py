"""Benchmark: HCLG build time/size for a realistic trigram LM, and decoding speed on oracle scores.

  .venv/bin/python tools/bench/decode.py [--vocab 1000] [--sentences 20000] [--utts 40] [--nj 2]

A synthetic lexicon (``--vocab`` words, 40 phones, 3-7 phones a word), a Zipf-distributed text with
local word dependencies, a trigram trained by kaldingram (subprocess), G through kaldilm; HCLG for the
one-state topology with a context-width-3 tree (N=3, P=1) and for the three-state topology with a
monophone tree. Decoding: oracle score matrices (true pdf 0, others -8 + N(0,1)) from random paths of
training graphs of held-out sentences, FasterDecoder beam 13, max-active 7000, acoustic scale 1.
Prints a table.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asrkit.decode import DecodeConfig, Graph, decode_set
from asrkit.graph import make_graph_dir
from asrkit.lang.lm import arpa_to_fst
from asrkit.testing.lang import write_toy_lang_dir
from asrkit.testing.oracle import make_oracle_alignment, make_oracle_scores, make_toy_model


def make_corpus(rng, vocab: int, n_sent: int):
    phones = [f"p{i}" for i in range(40)]
    words, lex = [], {}
    while len(words) < vocab:
        w = "w" + "".join(rng.choice(list("abcdefghijklmnop"), size=rng.integers(3, 8)))
        if w not in lex:
            lex[w] = [" ".join(rng.choice(phones, size=rng.integers(3, 8)))]
            words.append(w)
    probs = 1.0 / np.arange(1, vocab + 1)
    probs /= probs.sum()
    follow = rng.integers(0, vocab, size=(vocab, 5))  # each word has 5 favourite successors
    sents = []
    for _ in range(n_sent):
        n = rng.integers(4, 15)
        s = [int(rng.choice(vocab, p=probs))]
        for _ in range(n - 1):
            s.append(int(follow[s[-1], rng.integers(5)]) if rng.random() < 0.5 else int(rng.choice(vocab, p=probs)))
        sents.append(" ".join(words[i] for i in s))
    return lex, sents


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--sentences", type=int, default=20000)
    ap.add_argument("--utts", type=int, default=40)
    ap.add_argument("--nj", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        lex, sents = make_corpus(rng, a.vocab, a.sentences + a.utts)
        train, test = sents[: a.sentences], sents[a.sentences:]
        (tmp / "text").write_text("\n".join(train) + "\n")
        subprocess.run([sys.executable, "-m", "kaldingram.train", "--ngram-order", "3", "--text", str(tmp / "text"),
                        "--lm", str(tmp / "lm.arpa")], check=True)
        n_lines = sum(1 for l in open(tmp / "lm.arpa") if l.strip() and not l.startswith(("\\", "ngram")))
        print(f"corpus + trigram: {len(train)} sentences, {n_lines} n-grams, {time.perf_counter() - t0:.1f} s")
        for num_states, cw, shift in ((1, 3, 0.03), (3, 1, 0.01)):
            lang = write_toy_lang_dir(tmp / f"lang{num_states}", lex, num_states=num_states)
            g = tmp / "G.fst"
            arpa_to_fst(tmp / "lm.arpa", lang / "words.txt", g)
            model = make_toy_model(lang, cw)
            info = make_graph_dir(lang, g, model, tmp / f"graph{num_states}")
            graph = Graph.load(tmp / f"graph{num_states}")
            items, n_frames = [], 0
            for k, sent in enumerate(test):
                n_ph = sum(len(lex[w][0].split()) for w in sent.split())
                T = int(n_ph * num_states * (1.5 if num_states == 3 else 1.3)) + 4
                tids = make_oracle_alignment(model, lang, sent, T, seed=k)
                items.append((f"u{k}", make_oracle_scores(graph.tid2pdf, tids, graph.num_pdfs, seed=k)))
                n_frames += len(tids)
            refs = {f"u{k}": s.split() for k, s in enumerate(test)}
            for nj in sorted({1, a.nj}):
                cfg = DecodeConfig(acoustic_scale=1.0, beam=13.0, max_active=7000, frame_shift=shift)
                res, summ = decode_set(items, graph, cfg, nj=nj)
                from asrkit.decode.score import compute_wer
                wer = compute_wer(refs, {r.utt: r.words for r in res}, bootstrap=False)
                rows.append((f"{num_states}-state N={cw} {int(shift*1000)}ms", info.states, info.arcs,
                             info.build_seconds, info.stages["LG"]["arcs"], nj, summ.num_frames,
                             summ.frames_per_second, summ.frames_per_second / nj, summ.rtf, wer.wer,
                             summ.num_not_final))
    hdr = ("system", "HCLG states", "HCLG arcs", "build s", "LG arcs", "nj", "frames", "frames/s",
           "frames/s/core", "RTF", "WER%", "not final")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        print("| " + " | ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
