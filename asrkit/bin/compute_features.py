"""Stage 2: compute and store 10 ms features of one or more sets (fbank 64 bins or MFCC 13), lilcom via lhotse.

    python -m asrkit.bin.compute_features --cuts data/manifests/cuts_<set>.jsonl.gz \
        --out-dir data/fbank --set <set> --kind fbank|mfcc --nj 2

    python -m asrkit.bin.compute_features --cuts data/manifests/cuts_{train_sup,dev}.jsonl.gz \
        --set train_sup dev --out-dir data/fbank --kind fbank

Writes <out-dir>/cuts_<set>.jsonl.gz and <out-dir>/storage_<set>/; skips a set already done. Several sets
(one --cuts per --set, in the same order) are done one after the other in one process: the recipes' stage
2 pays python's start once per kind, not once per set.
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
    p.add_argument("--cuts", required=True, nargs="+", help="input lhotse cuts manifest(s) (cuts_<set>.jsonl.gz), "
                                                           "one per --set")
    p.add_argument("--out-dir", required=True, help="output folder, e.g. data/fbank or data/mfcc")
    p.add_argument("--set", dest="set_name", required=True, nargs="+", help="set name(s), e.g. train_sup dev")
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
    p = get_parser()
    args = p.parse_args(argv)
    if len(args.cuts) != len(args.set_name):
        p.error(f"{len(args.cuts)} --cuts for {len(args.set_name)} --set: give one manifest per set, in order")
    setup_logging(args.verbose)
    claim_output(args.out_dir, "compute_features")
    for cuts, set_name in zip(args.cuts, args.set_name):
        one = argparse.Namespace(**{**vars(args), "cuts": cuts, "set_name": set_name})  # as a one-set run
        try:
            g = guard(f"{one.kind} features of {set_name} in {one.out_dir}",
                      [manifest_path(one.out_dir, set_name), storage_dir(one.out_dir, set_name)],
                      fingerprint(_fingerprint_options(one), {"cuts": cuts}), force=one.force)
            summary = compute_features(cuts, one.out_dir, set_name, kind=one.kind, num_jobs=one.nj,
                                       chunk_size=one.chunk_size, overwrite=one.force,
                                       progress_bar=not one.no_progress)
            g.stamp()
        except (FileNotFoundError, ValueError, RuntimeError, StaleOutputError) as e:
            logging.error("%s", e)
            return 1
        print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
