"""Score hypotheses against references (Kaldi text files): WER, SER, bootstrap CI, per-utt alignment.

  python -m asrkit.bin.score --ref data/dev/text --hyp exp/x/decode_dev/hyp.txt --out-dir exp/x/decode_dev

Writes wer[_<weight>], per_utt[_<weight>] (and missing[_<weight>] when hypotheses are missing).
"""
from __future__ import annotations

import argparse
import sys

from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True)
    p.add_argument("--hyp", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--weight", default=None, help="suffix of the output files (wer_<weight>)")
    p.add_argument("--upper", action="store_true", help="uppercase both sides")
    p.add_argument("--lower", action="store_true", help="lowercase both sides")
    p.add_argument("--keep-noise", action="store_true", help="keep <UNK> and noise tokens")
    p.add_argument("--drop", default="", help="extra comma-separated tokens to drop")
    p.add_argument("--replications", type=int, default=1000, help="bootstrap replications (0: no CI)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging()
    from asrkit.decode.score import NOISE_TOKENS, make_normalizer, score_files

    drop = (() if a.keep_noise else NOISE_TOKENS) + tuple(t for t in a.drop.split(",") if t)
    norm = make_normalizer(uppercase=a.upper, lowercase=a.lower, drop=drop)
    res = score_files(a.ref, a.hyp, a.out_dir, a.weight, norm, bootstrap=a.replications > 0,
                      replications=max(1, a.replications), seed=a.seed)
    sys.stdout.write(res.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
