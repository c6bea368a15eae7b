"""Train a teacher (BLSTM) or student (LSTM) acoustic model on senone targets (stages 7, 9, 13).

  python -m asrkit.bin.train_nnet --config conf/teacher.yaml \
      --train-cuts exp/senone/cuts_train_sup.jsonl.gz --dev-cuts exp/senone/cuts_dev.jsonl.gz \
      --cmvn data/cmvn.npz --num-senones 1200 --out-dir exp/teacher [--num-epochs 8 --lr 5e-4 ...]

The yaml holds fields of asrkit.nnet.train.TrainConfig (flat, or under a ``train:`` key as in the
config.yaml a run writes); every field is also a flag (--field-name VALUE) that overrides it. Booleans
take true/false (yes/no, on/off, 1/0); optional fields take "none". A run restarted with the same --out-dir resumes from its
newest checkpoint. Writes checkpoint-<step>.pt, epoch-<n>.pt, best.pt, config.yaml, history.jsonl,
tensorboard/ and a .best.pt.done marker when training finished.

Several processes (one node, CPU/gloo; see asrkit/distributed/launch.py for several nodes)::

  torchrun --standalone --nproc_per_node=4 [--max-restarts 1] -m asrkit.bin.train_nnet ... \
      --sync ddp|gtc|bmuf|ma [--sync-period 50 --gtc-target-fraction 1e-3 ...]

Each rank trains on its share of every epoch's batches (rank r: batches r, r+N, ...); rank 0 alone
writes checkpoints, logs, TensorBoard and comm.json (communication accounting). A restarted group
(torchrun --max-restarts) resumes from the newest checkpoint.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Optional

from asrkit.bin.common.training import add_train_config_args, claim_run_dir, config_overrides, load_train_config
from asrkit.distributed.cli import add_dist_args, setup_distributed, sync_config_from_args
from asrkit.distributed.launch import ConfigMismatchError as DistConfigMismatch
from asrkit.distributed.launch import cleanup, file_checksum
from asrkit.nnet.train import mark_finished, train
from asrkit.utils.dirlock import releases_claims
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.train_nnet")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.train_nnet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="yaml of TrainConfig fields")
    p.add_argument("--train-cuts", nargs="+", required=True,
                   help="cuts with fbank and senone targets (stage 6); several are concatenated (train_sup and "
                        "its speed-perturbed copies)")
    p.add_argument("--dev-cuts", default=None, help="dev cuts: frame accuracy, best.pt, newbob")
    p.add_argument("--cmvn", required=True, help="data/cmvn.npz (global CMVN of the 64-dim fbank)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--no-resume", action="store_true", help="refuse to start if out-dir holds checkpoints")
    p.add_argument("--tree", default=None, help="optional: the senone tree; under torchrun every rank must have "
                                                "the same file (checksum compared at start)")
    p.add_argument("--verbose", action="store_true")
    add_dist_args(p)
    add_train_config_args(p)
    return p


@releases_claims
def main(argv=None, step_hook: Optional[Callable[[int], None]] = None) -> int:
    """``step_hook(step)``: called after every update (:class:`asrkit.nnet.train.Trainer`)."""
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    try:
        cfg = load_train_config(a.config, config_overrides(a))
        sync = sync_config_from_args(a)
    except (FileNotFoundError, ValueError) as e:
        p.error(str(e))
    for path in (*a.train_cuts, a.dev_cuts, a.cmvn, a.tree):
        if path and not Path(path).exists():
            p.error(f"not found: {path}")
    claim_run_dir(a.out_dir, "train_nnet")
    info = setup_distributed(a.dist_backend)
    consistency = {"tree": file_checksum(a.tree)} if a.tree else None
    try:
        # one manifest is passed as itself (as before the option), several as the list the trainer concatenates
        train_cuts = a.train_cuts[0] if len(a.train_cuts) == 1 else a.train_cuts
        res = train(cfg, train_cuts, a.dev_cuts, a.cmvn, a.out_dir, step_hook=step_hook, resume=not a.no_resume,
                    sync=sync, consistency=consistency, check_sync_every=a.check_sync_every,
                    dist_backend=a.dist_backend)
    except DistConfigMismatch as e:
        logging.error("train_nnet (rank %d): %s", info.rank, e)
        cleanup()
        return 1
    if info.rank == 0:
        mark_finished(res)
        print(f"train_nnet: {res.step} steps, {res.epoch} epochs, best dev frame accuracy {res.best_dev_acc:.4f}, "
              f"stopped: {res.stopped}, out: {res.out_dir}")
    cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
