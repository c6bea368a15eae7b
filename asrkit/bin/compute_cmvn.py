"""Stage 2: global CMVN statistics of the stored fbank of the labelled training cuts.

    python -m asrkit.bin.compute_cmvn --cuts data/fbank/cuts_train_sup.jsonl.gz --out data/cmvn.npz

Writes count, sum, sumsq (float64), mean, std (floored) and std_floor; skips if <out> is already done.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from asrkit.features.cmvn import STD_FLOOR, compute_cmvn
from asrkit.utils.cli import add_force
from asrkit.utils.fingerprint import StaleOutputError, fingerprint, guard
from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.compute_cmvn", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cuts", required=True, help="cuts manifest with features (data/fbank/cuts_train_sup.jsonl.gz)")
    p.add_argument("--out", required=True, help="output .npz (data/cmvn.npz)")
    p.add_argument("--std-floor", type=float, default=STD_FLOOR, help=f"floor of the std (default {STD_FLOOR})")
    add_force(p, "recompute even if the output is marked done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        g = guard(f"the CMVN stats {args.out}", [args.out],
                  fingerprint({"std_floor": args.std_floor}, {"cuts": args.cuts}), force=args.force)
        stats = compute_cmvn(args.cuts, args.out, std_floor=args.std_floor, overwrite=args.force,
                             progress_bar=not args.no_progress)
        g.stamp()
    except (FileNotFoundError, ValueError, StaleOutputError) as e:
        logging.error("%s", e)
        return 1
    print(f"cmvn: {args.out}: {int(stats.count)} frames, dim {stats.dim}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
