"""Decode a set with a GMM system over its HCLG and score it (Kaldi's steps/decode.sh + local/score.sh).

  python -m asrkit.bin.decode_gmm --model exp/tri/final.mdl --graph exp/tri/graph \
      --cuts data/mfcc/cuts_dev.jsonl.gz --out-dir exp/tri/decode_dev --lm-weights 7:17:2 --nj 2

Writes the decode dir of asrkit.decode.sweep: lmwt_<w>/ (hyp.txt, ali.txt, ...), wer_<w>, per_utt_<w>,
best_wer, and the best weight's hyp.txt. ``--lm-weight W`` decodes one weight only (e.g. the best on dev
for a test set: ``--lm-weight-from exp/tri/decode_dev/best_wer``). Skips a decode dir marked done.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkit.utils.cli import add_out_dir
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.decode_gmm")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.mdl of a GMM system")
    p.add_argument("--graph", required=True, help="graph dir (asrkit.bin.make_graph)")
    p.add_argument("--cuts", required=True, help="MFCC cuts of the set, with transcripts")
    add_out_dir(p, "decode dir")
    p.add_argument("--lm-weights", default="7:17:2", help="LM weights to sweep (acoustic scale 1/w)")
    p.add_argument("--lm-weight-from", default=None, help="take the single LM weight from this best_wer file")
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--max-active", type=int, default=7000)
    p.add_argument("--cmn", choices=["speaker", "utt", "none"], default="speaker")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--force", action="store_true", help="decode even if the decode dir is marked done")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    for path, what in ((a.model, "--model"), (a.graph, "--graph"), (a.cuts, "--cuts")):
        if not Path(path).exists():
            p.error(f"{what} {path} does not exist")

    from asrkit.decode.score import read_best_weight
    from asrkit.gmm import FeatConfig, GmmModel, load_corpus
    from asrkit.gmm.decode import best_wer_line, decode_gmm
    from asrkit.utils.atomic import mark_done, up_to_date

    out = Path(a.out_dir)
    # make's rule, as make_graph and decode: a model or graph redone since (stage 4 or 5 under --force)
    # is decoded again
    if not a.force and up_to_date(out, [a.model, Path(a.graph) / "HCLG.fst", a.cuts, a.lm_weight_from]):
        log.info("%s is done: %s", out, best_wer_line(out))
        return 0
    weights = [read_best_weight(a.lm_weight_from)] if a.lm_weight_from else a.lm_weights
    model = GmmModel.load(a.model)
    corpus = load_corpus(a.cuts, FeatConfig(cmn=a.cmn), need_text=False)
    refs = {u: w for u, w in corpus.text.items() if w}
    if not refs:
        p.error(f"{a.cuts} has no transcripts to score against")
    decode_gmm(model, a.graph, corpus.feats, refs, out, weights, beam=a.beam, max_active=a.max_active, nj=a.nj)
    mark_done(out)
    print(f"{best_wer_line(out)} {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
