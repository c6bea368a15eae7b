"""Average the weights of a network's last epoch checkpoints (icefall's ``--avg``) into one model.

  python -m asrkit.bin.average_checkpoints --dir exp/teacher --last 6            # -> exp/teacher/avg.pt
  python -m asrkit.bin.average_checkpoints --out avg.pt exp/teacher/epoch-{7..12}.pt

The result reads like ``best.pt`` (nnet_forward, pseudo_label, realign_nnet, export_model). The recipes'
``--nnet-avg N`` decodes and labels with it instead of ``best.pt`` (the best dev frame accuracy).
An output made from the same files (paths and contents, in its done marker) is left as it is.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkit.utils.cli import add_force
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.average_checkpoints")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.average_checkpoints", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="*", help="checkpoints to average (or --dir and --last)")
    p.add_argument("--dir", default=None, help="a network's folder: average its last --last epoch-<k>.pt")
    p.add_argument("--last", type=int, default=None, help="how many of the last epochs")
    p.add_argument("--out", default=None, help="the averaged model (default <dir>/avg.pt)")
    add_force(p, "average again even if --out is up to date")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    a = get_parser().parse_args(argv)
    setup_logging(a.verbose)
    from asrkit.nnet.checkpoint import average_models, last_epoch_checkpoints, save_checkpoint
    from asrkit.utils.fingerprint import fingerprint, fresh, stamp

    if bool(a.checkpoints) == bool(a.dir):
        log.error("give either checkpoints or --dir with --last")
        return 2
    try:
        paths = last_epoch_checkpoints(a.dir, a.last or 0) if a.dir else [Path(c) for c in a.checkpoints]
        out = Path(a.out) if a.out else Path(a.dir or ".") / "avg.pt"
        fp = fingerprint({}, {"checkpoints": paths})
        if fresh(out, fp)[0] and not a.force:
            log.info("%s already averages %s: up to date", out, ", ".join(p.name for p in paths))
            return 0
        ck = average_models(paths)
    except (FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 1
    save_checkpoint(out, ck)
    stamp(out, fp)
    log.info("%s: the mean of %d checkpoints (%s)", out, len(paths), ", ".join(ck["averaged"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
