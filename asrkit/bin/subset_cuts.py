"""Stage 14: a nested random subset of a cut manifest, chosen by hours (see asrkit.data.subset).

  python -m asrkit.bin.subset_cuts --cuts data/fbank/cuts_train_unsup.jsonl.gz \\
      --ratio-of exp/senone/cuts_train_sup.jsonl.gz --ratio 2 --seed 0 \\
      --out exp/sweep/x2/cuts_unsup.jsonl.gz --summary exp/sweep/x2/sweep.json

  python -m asrkit.bin.subset_cuts --cuts data/fbank/cuts_train_unsup.jsonl.gz --hours 0.5 --out sub.jsonl.gz

The cuts are shuffled once with --seed and the shortest prefix holding the requested hours is kept (in
manifest order), so with one seed a smaller subset is always inside a larger one. A request for more
than the manifest holds is refused. --order hash ranks the cuts by a keyed hash of their ids instead of
the shuffle (asrkit.data.hash_subset): the same nesting, memory that does not grow with the manifest
(for corpora of 10^8 cuts), other cuts than the shuffle picks. --summary writes what the subset holds
(cuts, hours, the ratio to --ratio-of's hours, the seed and the source) as json: the report reads the
sweep's ratios from it.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import List, Optional

from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.subset_cuts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cuts", required=True, help="the manifest to subset (data/fbank/cuts_train_unsup.jsonl.gz)")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--hours", type=float, help="hours of audio the subset holds (at least)")
    size.add_argument("--ratio", type=float, help="... or this many times the hours of --ratio-of")
    p.add_argument("--ratio-of", default=None, help="the manifest whose hours --ratio multiplies (the labelled cuts)")
    p.add_argument("--seed", type=int, default=0, help="seed of the one shuffle (default 0)")
    p.add_argument("--order", choices=("shuffle", "hash"), default="shuffle",
                   help="shuffle: one seeded shuffle of every id (the recipes'); hash: a seeded hash of each id, "
                        "flat memory at any size (default shuffle)")
    p.add_argument("--out", required=True, help="output cuts manifest (.jsonl.gz)")
    p.add_argument("--summary", default=None, help="write what the subset holds to this json")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    if a.ratio is not None and a.ratio_of is None:
        p.error("--ratio needs --ratio-of (the manifest whose hours it multiplies)")
    if a.hours is not None and a.ratio_of is not None:
        p.error("--ratio-of goes with --ratio, not --hours")
    setup_logging(a.verbose)
    from asrkit.data.hash_subset import hashed_subset_manifest
    from asrkit.data.subset import SubsetError, subset_manifest
    from asrkit.utils.atomic import atomic_write_text

    try:
        make = hashed_subset_manifest if a.order == "hash" else subset_manifest
        info = make(a.cuts, a.out, a.seed, hours=a.hours, ratio=a.ratio, ratio_of=a.ratio_of)
    except SubsetError as e:
        logging.error("subset_cuts: %s", e)
        return 1
    if a.summary:
        atomic_write_text(a.summary, json.dumps(info.to_dict(), indent=1) + "\n")
    ratio = f", {info.ratio:.3f} x the hours of {info.ratio_of}" if info.ratio is not None else ""
    print(f"subset_cuts: {info.cuts} of {info.source_cuts} cuts, {info.hours:.4f} of {info.source_hours:.4f} h"
          f"{ratio} (seed {info.seed}, {a.order} order) -> {info.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
