"""Stage 2: compute and store 10 ms features of one set (fbank 64 bins or MFCC 13), lilcom via lhotse.

    python -m asrkit.bin.compute_features --cuts data/manifests/cuts_<set>.jsonl.gz \
        --out-dir data/fbank --set <set> --kind fbank|mfcc --nj 2

Writes <out-dir>/cuts_<set>.jsonl.gz and <out-dir>/storage_<set>/; skips a set already done.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from asrkit.features.extract import KINDS, compute_features, manifest_path, storage_dir
from asrkit.utils.cli import add_force, add_nj
from asrkit.utils.dirlock import claim_output, releases_claims
from asrkit.utils.fingerprint import StaleOutputError, fingerprint, guard, options_of
from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.compute_features", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cuts", required=True, help="input lhotse cuts manifest (cuts_<set>.jsonl.gz)")
    p.add_argument("--out-dir", required=True, help="output folder, e.g. data/fbank or data/mfcc")
    p.add_argument("--set", dest="set_name", required=True, help="set name, e.g. train_sup")
    p.add_argument("--kind", choices=KINDS, default="fbank", help="fbank (64 bins) or mfcc (13 coefficients)")
    add_nj(p, help="parallel processes")
    p.add_argument("--chunk-size", type=int, default=None, help="cuts per lilcom archive (default: automatic)")
    add_force(p, "recompute even if the set is marked done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true")
    return p


def _fingerprint_options(args) -> dict:
    """The options the stamp records, under the names they had before --nj/--force (so that a set
    stamped before the rename is not taken for stale)."""
    opts = options_of(args, drop=("out_dir", "chunk_size", "nj", "force"))
    opts.update(num_jobs=args.nj, overwrite=args.force)
    return opts


@releases_claims
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    claim_output(args.out_dir, "compute_features")
    try:
        g = guard(f"{args.kind} features of {args.set_name} in {args.out_dir}",
                  [manifest_path(args.out_dir, args.set_name), storage_dir(args.out_dir, args.set_name)],
                  fingerprint(_fingerprint_options(args), {"cuts": args.cuts}), force=args.force)
        summary = compute_features(args.cuts, args.out_dir, args.set_name, kind=args.kind, num_jobs=args.nj,
                                   chunk_size=args.chunk_size, overwrite=args.force,
                                   progress_bar=not args.no_progress)
        g.stamp()
    except (FileNotFoundError, ValueError, RuntimeError, StaleOutputError) as e:
        logging.error("%s", e)
        return 1
    print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
