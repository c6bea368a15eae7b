#!/usr/bin/env python
"""Benchmark asrkit.tree: seconds to grow trees of 500, 1,000 and 3,000 leaves.

Fixed synthetic statistics resembling ~3 million frames: 40 phones, 40-dim features, every triphone
(l, c, r) with l, r in 0..40 seen (67,240 contexts, one pdf-class: the 30 ms one-state topology), Zipf
frame counts. Also times the accumulation of statistics from 1 M frames and the question clustering.

    .venv/bin/python tools/bench/tree.py [--frames 3e6] [--phones 40] [--dim 40] [--leaves 500 1000 3000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from asrkit.tree import TreeBuildConfig, accumulate_tree_stats, build_tree, make_questions
from asrkit.testing.tree import make_triphone_stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=float, default=3e6)
    ap.add_argument("--phones", type=int, default=40)
    ap.add_argument("--dim", type=int, default=40)
    ap.add_argument("--pdf-classes", type=int, default=1)
    ap.add_argument("--context-weight", type=float, default=0.5)
    ap.add_argument("--leaves", type=int, nargs="+", default=[500, 1000, 3000])
    ap.add_argument("--acc-frames", type=float, default=1e6, help="frames for the accumulation timing")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    t_acc = int(args.acc_frames)
    lengths = rng.integers(3, 15, size=t_acc // 8 + 1)
    seg_phone = rng.integers(1, args.phones + 1, size=len(lengths))
    phones = np.repeat(seg_phone, lengths)[:t_acc]
    pdfs = np.zeros(len(phones), dtype=np.int32)
    feats = rng.normal(size=(len(phones), args.dim)).astype(np.float32)
    utt = np.full(len(phones) // 300, 300)
    utt[-1] += len(phones) - utt.sum()
    t0 = time.perf_counter()
    acc = accumulate_tree_stats(phones, pdfs, feats, utt_lengths=utt)
    t_accum = time.perf_counter() - t0
    print(f"accumulate: {len(phones):,} frames x {args.dim} dims -> {acc.num_contexts:,} contexts in "
          f"{t_accum:.2f} s ({len(phones) / t_accum:,.0f} frames/s)")

    t0 = time.perf_counter()
    stats = make_triphone_stats(args.phones, args.dim, args.frames, args.pdf_classes,
                                context_weight=args.context_weight, seed=args.seed)
    print(f"synthetic statistics: {stats.num_contexts:,} contexts, {stats.total_count:,.0f} frames, "
          f"dim {stats.dim} ({time.perf_counter() - t0:.2f} s to make)")
    t0 = time.perf_counter()
    q = make_questions(stats, seed=args.seed)
    print(f"questions (cluster-phones): {len(q.phone_questions)} phone sets in {time.perf_counter() - t0:.2f} s")
    print()
    print(f"| max leaves | cluster | leaves after splits | pdfs | data-limited | seconds |")
    print(f"|---|---|---|---|---|---|")
    for leaves in args.leaves:
        for cl, name in ((-1.0, "Kaldi default"), (0.0, "none")):
            cfg = TreeBuildConfig(max_leaves=leaves, cluster_thresh=cl)
            t0 = time.perf_counter()
            res = build_tree(stats, q, config=cfg)
            secs = time.perf_counter() - t0
            print(f"| {leaves:,} | {name} | {res.num_leaves_split:,} | {res.num_leaves:,} | "
                  f"{'yes' if res.data_limited else 'no'} | {secs:.2f} |", flush=True)


if __name__ == "__main__":
    main()
