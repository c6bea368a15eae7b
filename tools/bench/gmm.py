#!/usr/bin/env python3
"""Benchmark of the GMM system's inner loops on a fixed synthetic set: frames/s of statistics
accumulation (batched numpy vs Kaldi's per-frame ``accumulate_for_gmm``) and of forced alignment, for
1 and 2 jobs. Needs no audio: a digit lexicon, a monophone model with random means mixed up to
``--gauss`` Gaussians, and features sampled from it along equal alignments (seeded).

  .venv/bin/python tools/bench/gmm.py [--utts 400] [--gauss 1000] [--nj 1 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from asrkit.fst import kaldi_hmm_gmm  # noqa: E402  (first: the FST stack in the safe order)
from asrkit.gmm import AlignOptions, GmmStats, LangInfo, accumulate, run_jobs  # noqa: E402
from asrkit.gmm.align import equal_align  # noqa: E402
from asrkit.gmm.graphs import GraphCompiler  # noqa: E402
from asrkit.gmm.model import gmm_params, init_mono  # noqa: E402
from asrkit.testing.lang import write_toy_lang_dir  # noqa: E402

LEXICON = {"zero": "z i@ r oU", "one": "w V n", "two": "t u:", "three": "T r i:", "four": "f o@",
           "five": "f aI v", "six": "s I k s", "seven": "s E v @ n", "eight": "eI t", "nine": "n aI n"}


def make_set(lang: LangInfo, num_utts: int, gauss: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    dim = 39
    model = init_mono(lang.topo_text, np.zeros(dim), np.ones(dim))
    for p in range(model.num_pdfs):
        g = model.am.get_pdf(p)
        g.set_means(rng.normal(0, 2.0, (1, dim)).astype(np.float32))
        g.compute_gconsts()
    model.am.split_by_count(state_occs=np.ones(model.num_pdfs, dtype=np.float32), target_components=gauss,
                            perturb_factor=0.5, power=0.2, min_count=0.0)
    model.am.compute_gconsts()
    gc = GraphCompiler(model, lang)
    words = list(LEXICON)
    text, feats, graphs, alis = {}, {}, {}, {}
    means = [np.asarray(model.am.get_pdf(p).means_invvars) / np.asarray(model.am.get_pdf(p).inv_vars)
             for p in range(model.num_pdfs)]
    for i in range(num_utts):
        u = f"u{i:05d}"
        ws = [str(w) for w in rng.choice(words, size=int(rng.integers(3, 6)))]
        g = gc.compile(ws)
        n = 12 * sum(len(LEXICON[w].split()) for w in ws) + int(rng.integers(20, 60))
        a = equal_align(g, n, i)
        pdf = model.info.pdf[a]
        comp = [rng.integers(len(means[p])) for p in pdf]
        x = np.stack([means[p][c] for p, c in zip(pdf, comp)]) + rng.standard_normal((n, dim))
        text[u], feats[u], graphs[u], alis[u] = ws, x.astype(np.float32), g, a
    return model, text, feats, graphs, alis


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--utts", type=int, default=400)
    p.add_argument("--gauss", type=int, default=1000)
    p.add_argument("--nj", type=int, nargs="+", default=[1, 2])
    p.add_argument("--kaldi-frames", type=int, default=20000, help="frames for the per-frame Kaldi baseline")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        lang = LangInfo.read(write_toy_lang_dir(Path(d) / "lang", LEXICON))
        t0 = time.perf_counter()
        model, text, feats, graphs, alis = make_set(lang, a.utts, a.gauss)
        frames = sum(len(f) for f in feats.values())
        print(f"set: {a.utts} utterances, {frames} frames, {model.num_pdfs} pdfs, {model.num_gauss} Gaussians, "
              f"dim {model.dim} (made in {time.perf_counter() - t0:.1f} s)")
        rows = []
        # per-frame Kaldi accumulation (what gmm-acc-stats-ali does, one Python call a frame)
        acc = kaldi_hmm_gmm.AccumAmDiagGmm()
        acc.init(model.am, kaldi_hmm_gmm.GmmUpdateFlags.kGmmAll)
        n, t0 = 0, time.perf_counter()
        for u in feats:
            for f, t in zip(feats[u], alis[u]):
                acc.accumulate_for_gmm(model.am, f, int(model.info.pdf[t]), 1.0)
            n += len(feats[u])
            if n >= a.kaldi_frames:
                break
        rows.append(("accumulate, Kaldi per-frame calls", 1, n, time.perf_counter() - t0))
        params = gmm_params(model.am)
        t0 = time.perf_counter()
        st = GmmStats.zeros(params, model.transition_model.num_transition_ids)
        accumulate(st, params, model.info.pdf, list(feats.values()), [alis[u] for u in feats])
        rows.append(("accumulate, batched numpy (in process)", 1, frames, time.perf_counter() - t0))
        for nj in a.nj:
            t0 = time.perf_counter()
            r = run_jobs(list(feats), feats, mode="acc", model=model, alis=alis, nj=nj)
            rows.append(("accumulate, run_jobs (incl. pool)", nj, r.frames, time.perf_counter() - t0))
        for nj in a.nj:
            t0 = time.perf_counter()
            r = run_jobs(list(feats), feats, graphs=graphs, mode="align", model=model, opts=AlignOptions(),
                         accumulate_stats=False, nj=nj)
            rows.append((f"align beam 10 ({len(r.failed)} failed)", nj, r.frames, time.perf_counter() - t0))
        for nj in a.nj:
            t0 = time.perf_counter()
            r = run_jobs(list(feats), feats, graphs=graphs, mode="align", model=model, opts=AlignOptions(),
                         accumulate_stats=True, nj=nj)
            rows.append(("align + accumulate (one EM pass)", nj, r.frames, time.perf_counter() - t0))
        print(f"\n{'what':<42} {'jobs':>4} {'frames':>9} {'seconds':>8} {'frames/s':>10}")
        for what, nj, n, s in rows:
            print(f"{what:<42} {nj:>4} {n:>9} {s:>8.3f} {n / s:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
