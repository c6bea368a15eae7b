"""Decode per-frame pdf scores (kaldiio scores.scp / ark) with an HCLG graph dir.

  # dev: sweep LM weights (acoustic scale 1/w), score each, keep the best
  python -m asrkit.bin.decode --graph exp/x/graph --scores exp/x/scores_dev/scores.scp \
      --log-priors exp/x/log_priors.npy --ref data/dev/text --lm-weights 7:17 --nj 2 --out-dir exp/x/decode_dev
  # test: reuse dev's best weight
  python -m asrkit.bin.decode --graph exp/x/graph --scores exp/x/scores_test --lm-weight-from \
      exp/x/decode_dev/best_wer --ref data/test/text --out-dir exp/x/decode_test

Writes hyp.txt, ali.txt, phone_ali.txt, not_final.txt, summary.json (and with --ref wer_<w>,
per_utt_<w>, best_wer). Scores are log-likelihood-like: posteriors' logs minus --log-priors, or GMM
log-likelihoods.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkit.utils.cli import add_out_dir
from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graph", required=True, help="graph dir from asrkit.bin.make_graph")
    p.add_argument("--scores", required=True, help="scores.scp, an ark, or a dir holding scores.scp")
    add_out_dir(p, "decode dir")
    p.add_argument("--log-priors", default=None, help="log priors (.npy or text) subtracted from the scores")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--lm-weight", type=float, default=None, help="one LM weight (acoustic scale 1/w)")
    g.add_argument("--lm-weights", default=None, help="sweep, e.g. 7:17 or 8,10,12 (needs --ref)")
    g.add_argument("--lm-weight-from", default=None, help="a best_wer file: use its weight")
    g.add_argument("--acoustic-scale", type=float, default=None)
    p.add_argument("--ref", default=None, help="reference text: score the output")
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--max-active", type=int, default=7000)
    p.add_argument("--min-active", type=int, default=200)
    p.add_argument("--no-partial", action="store_true", help="empty hypothesis when no final state is reached")
    p.add_argument("--frame-shift", type=float, default=0.03, help="seconds per frame (for the RTF)")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--upper", action="store_true", help="score in uppercase")
    p.add_argument("--keep-noise", action="store_true", help="do not drop <UNK>/noise tokens when scoring")
    p.add_argument("--force", action="store_true", help="decode even if the decode dir is up to date")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    from asrkit.utils.atomic import mark_done, up_to_date

    scores_file = Path(a.scores) / "scores.scp" if Path(a.scores).is_dir() else Path(a.scores)
    inputs = [scores_file, Path(a.graph) / "HCLG.fst", a.ref, a.lm_weight_from, a.log_priors]
    if not a.force and up_to_date(a.out_dir, inputs):
        logging.getLogger("asrkit.bin.decode").info("%s is up to date; --force decodes again", a.out_dir)
        return 0
    from asrkit.decode.decoder import (DecodeConfig, Graph, decode_set, iter_scores, read_log_priors,
                                       with_priors, write_decode_dir)
    from asrkit.decode.score import (NOISE_TOKENS, compute_wer, make_normalizer, read_best_weight, read_text,
                                     write_best_wer, write_wer_files)
    from asrkit.decode.sweep import parse_weights, sweep

    if a.lm_weights and not a.ref:
        p.error("--lm-weights needs --ref")
    graph = Graph.load(a.graph)
    priors = read_log_priors(a.log_priors) if a.log_priors else None
    scores = lambda: with_priors(iter_scores(a.scores), priors)  # noqa: E731
    cfg = DecodeConfig(beam=a.beam, max_active=a.max_active, min_active=a.min_active,
                       allow_partial=not a.no_partial, frame_shift=a.frame_shift)
    norm = make_normalizer(uppercase=a.upper, drop=() if a.keep_noise else NOISE_TOKENS)
    refs = read_text(a.ref) if a.ref else None
    if a.lm_weights:
        results = sweep(scores, graph, refs, a.out_dir, parse_weights(a.lm_weights), cfg, a.nj, norm)
        mark_done(a.out_dir)
        print((Path(a.out_dir) / "best_wer").read_text().strip())
        return 0
    if a.lm_weight_from:
        weight = read_best_weight(a.lm_weight_from)
    elif a.lm_weight is not None:
        weight = a.lm_weight
    elif a.acoustic_scale is not None:
        weight = 1.0 / a.acoustic_scale
    else:
        weight = 10.0
    cfg.acoustic_scale = 1.0 / weight
    utt_results, summary = decode_set(scores(), graph, cfg, nj=a.nj, progress=True)
    write_decode_dir(utt_results, summary, a.out_dir)
    if refs is not None:
        res = compute_wer(refs, {r.utt: r.words for r in utt_results}, norm)
        write_wer_files(res, a.out_dir, weight)
        write_best_wer({weight: res}, a.out_dir)
        print(res.wer_line())
    mark_done(a.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
