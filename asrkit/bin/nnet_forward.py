"""Run a trained network over cuts and write scores for hybrid decoding (stages 8, 9, 11-13).

  python -m asrkit.bin.nnet_forward --model exp/teacher/best.pt --cuts exp/senone/cuts_dev.jsonl.gz \
      --cmvn data/cmvn.npz --priors exp/senone/senone_counts.npy --out-dir exp/teacher/decode_dev/scores \
      [--streaming true --chunk 32] [--output log_posteriors]
  python -m asrkit.bin.decode --graph exp/senone/graph --scores exp/teacher/decode_dev/scores ...

Writes <out>/scores.ark + scores.scp (float32 [frames, senones] per cut: log-posteriors minus floored
log priors, ready for asrkit.bin.decode without --log-priors) and <out>/log_priors.npy. With
--output log_posteriors the raw log-posteriors are written; decode them with --log-priors
<out>/log_priors.npy. Cuts need fbank features only (no targets).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from asrkit.utils.cli import add_out_dir, parse_bool
from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="best.pt or any checkpoint")
    p.add_argument("--cuts", required=True, help="cuts manifest with fbank features")
    p.add_argument("--cmvn", required=True, help="data/cmvn.npz")
    p.add_argument("--priors", default=None, help="senone_counts.npy (frame counts per senone)")
    p.add_argument("--prior-floor", type=float, default=1e-8, help="floor of the normalised priors")
    add_out_dir(p, "output dir for scores.ark/scores.scp")
    p.add_argument("--output", choices=("scores", "log_posteriors"), default="scores")
    p.add_argument("--streaming", type=parse_bool, default=False, help="chunked, state-carrying (student only)")
    p.add_argument("--chunk", type=int, default=32, help="frames per chunk in streaming mode")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-threads", type=int, default=1,
                   help="torch CPU threads (default 1: on busy cores a second spinning thread made the forward "
                        "2.5-20x slower in our runs; run parallel jobs instead)")
    p.add_argument("--force", action="store_true", help="recompute even if the scores are up to date")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    for path in (a.model, a.cuts, a.cmvn) + ((a.priors,) if a.priors else ()):
        if not Path(path).exists():
            p.error(f"not found: {path}")
    if a.output == "scores" and not a.priors:
        p.error("--output scores needs --priors")
    from asrkit.utils.fingerprint import fingerprint, fresh, stamp

    # the model file's path and content are remembered: best.pt and avg.pt (--nnet-avg) of one folder
    # are other inputs, whatever their times
    fp = fingerprint({"output": a.output, "streaming": a.streaming, "chunk": a.chunk, "prior_floor": a.prior_floor},
                     {"model": a.model, "cuts": a.cuts, "cmvn": a.cmvn, "priors": a.priors})
    done, changed = fresh(a.out_dir, fp)
    log = logging.getLogger("asrkit.bin.nnet_forward")
    if done and not a.force:
        log.info("%s is up to date; --force recomputes it", a.out_dir)
        return 0
    if changed:
        log.info("%s: recomputing, made from other inputs: %s", a.out_dir, "; ".join(changed))
    from asrkit.nnet.dataset import load_cuts, reader_for_checkpoint
    from asrkit.nnet.infer import load_model, log_priors_from_counts, write_scores
    from asrkit.nnet.train import pick_device

    import torch

    if a.num_threads > 0:
        torch.set_num_threads(a.num_threads)
    model, cfg, meta = load_model(a.model, pick_device(a.device))
    priors = log_priors_from_counts(a.priors, a.prior_floor) if a.priors else None
    reader = reader_for_checkpoint(a.model, a.cmvn, a.cuts)  # the normalisation the network was trained with
    summary = write_scores(model, load_cuts(a.cuts), reader, a.out_dir, priors, streaming=a.streaming,
                           chunk=a.chunk, output=a.output)
    stamp(a.out_dir, fp)
    print("nnet_forward: " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
