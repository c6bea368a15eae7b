"""Speed-perturbed copies of a labelled set, for network training (see asrkit.data.perturb).

  python -m asrkit.bin.perturb_speed --cuts data/manifests/cuts_train_sup.jsonl.gz --set train_sup \\
      --factors "0.9 1.1" --out-dir data/manifests

writes <out-dir>/cuts_train_sup_sp0.9.jsonl.gz and cuts_train_sup_sp1.1.jsonl.gz (cuts on the original
audio with lhotse's Speed transform; ids and speakers suffixed _sp<f>). Stage 2 then computes their
fbank and MFCC as sets of their own, and stage 6 aligns them with the triphone GMM (make_senones
--sets train_sup,dev,train_sup_sp0.9,train_sup_sp1.1).

  python -m asrkit.bin.perturb_speed --factors "0.9 1.1" --check [--option-name=--speed-perturb]

only checks the factors (a recipe does this at start, before stage 0): exit status 2 and a message
naming the option when one is not a number > 0.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from asrkit.utils.cli import add_force, add_out_dir
from asrkit.utils.dirlock import claim_output, releases_claims
from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.perturb_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--factors", required=True, help='speed factors, e.g. "0.9 1.1" (1.0, the original, is dropped)')
    p.add_argument("--check", action="store_true", help="only check --factors and print them as the copies are "
                                                        "named (0.90 -> 0.9, 1.0 dropped); no other option needed")
    p.add_argument("--option-name", default="--factors",
                   help="the option the errors name (a recipe: --option-name=--speed-perturb)")
    p.add_argument("--cuts", default=None, help="stage 1's cuts of the set (data/manifests/cuts_<set>.jsonl.gz)")
    p.add_argument("--set", dest="set_name", default=None, help="the set's name, e.g. train_sup")
    add_out_dir(p, "where the copies' manifests go (data/manifests)", required=False)
    add_force(p, "rewrite copies that are done")
    p.add_argument("--verbose", action="store_true")
    return p


@releases_claims
def main(argv: Optional[List[str]] = None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    from asrkit.data.perturb import parse_speed_factors, perturbed_set_name, write_perturbed_sets

    try:
        factors = parse_speed_factors(a.factors, option=a.option_name)
    except ValueError as e:  # the message names the option; a recipe shows it alone, without the usage
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    if a.check:
        print(" ".join(str(f) for f in factors))
        return 0
    for name in ("cuts", "set_name", "out_dir"):
        if getattr(a, name) is None:
            p.error(f"--{name.replace('_name', '').replace('_', '-')} is needed (or --check)")
    if not Path(a.cuts).exists():
        p.error(f"--cuts {a.cuts} does not exist")
    from asrkit.utils.fingerprint import StaleOutputError, fingerprint, guard

    claim_output(a.out_dir, "perturb_speed")
    try:
        for f in factors:  # one guard per copy: a factor added later does not redo the others
            out = Path(a.out_dir) / f"cuts_{perturbed_set_name(a.set_name, f)}.jsonl.gz"
            g = guard(f"the speed-perturbed copy {out}", [out],
                      fingerprint({"set": a.set_name, "factor": f}, {"cuts": a.cuts}), force=a.force)
            write_perturbed_sets(a.cuts, a.set_name, [f], a.out_dir, force=a.force)
            g.stamp()
    except (FileNotFoundError, ValueError, StaleOutputError) as e:
        logging.error("perturb_speed: %s", e)
        return 1
    print(f"perturb_speed: {a.set_name} at speeds {' '.join(str(f) for f in factors) or '(none)'} -> {a.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
