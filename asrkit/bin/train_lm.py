"""Stage 3: n-gram LM (kaldingram) → data/lm/lm_<N>gram.arpa, G.fst (kaldilm), ppl_dev.txt.

Example:
  python -m asrkit.bin.train_lm --text data/train_sup/text --order 3 --words data/lang/words.txt \\
      --dev-text data/dev/text --out-dir data/lm
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkit.lang.lm import ArpaError, LmConfig, LmError, build_lm
from asrkit.utils.dirlock import claim_output, releases_claims
from asrkit.utils.fingerprint import StaleOutputError, fingerprint, guard, options_of
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.train_lm")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", action="append", required=True,
                   help="training text: Kaldi text (utt w1 w2 ...: the first field is always an id); repeatable")
    p.add_argument("--extra-text", action="append", default=[], help="more training text (Kaldi text, as --text)")
    p.add_argument("--plain-text", action="append", default=[],
                   help="more training text without utterance ids: one sentence per line")
    p.add_argument("--order", type=int, default=3, help="n-gram order (1..5)")
    p.add_argument("--prune-threshold", type=float, default=0.0,
                   help="entropy pruning threshold (kaldingram prune --threshold); 0: no pruning")
    p.add_argument("--min-counts", default="", help="comma-separated minimum counts per order, e.g. 0,1,1")
    p.add_argument("--words", help="words.txt of the lang dir: OOV training words → --unk, and G.fst is written")
    p.add_argument("--unk", default="<UNK>", help="word for training words outside --words ('' keeps them)")
    p.add_argument("--lexicon-unigram-mass", type=float, default=LmConfig.lexicon_unigram_mass,
                   help="unigram probability shared by the --words the text lacks (0: leave them out of the LM)")
    p.add_argument("--dev-text", action="append", default=[], help="Kaldi text for perplexity / OOV rate")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--force", action="store_true", help="rewrite outputs that have done markers")
    p.add_argument("--verbose", action="store_true")
    return p


@releases_claims
def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    mins = tuple(int(x) for x in args.min_counts.split(",") if x.strip())
    cfg = LmConfig(order=args.order, prune_threshold=args.prune_threshold, min_counts=mins, unk_word=args.unk or None,
                   lexicon_unigram_mass=args.lexicon_unigram_mass)
    claim_output(args.out_dir, "train_lm")
    d = Path(args.out_dir)
    outputs = [d / f"lm_{args.order}gram.arpa"] + ([d / "G.fst"] if args.words else []) + (
        [d / "ppl_dev.txt"] if args.dev_text else [])
    try:
        g = guard(f"the LM in {d}", outputs, fingerprint(
            options_of(args, drop=("out_dir",)),
            {"text": args.text, "extra_text": args.extra_text, "plain_text": args.plain_text, "words": args.words,
             "dev_text": args.dev_text}),
            force=args.force)
        out = build_lm(args.text + args.extra_text, args.out_dir, cfg, args.words, args.dev_text, args.force,
                       plain_texts=args.plain_text)
        g.stamp()
    except (ArpaError, LmError, FileNotFoundError, ValueError, StaleOutputError) as e:
        log.error("%s", e)
        return 1
    if "ppl" in out:
        print(out["ppl"].read_text().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
