"""Train a teacher (BLSTM) or student (LSTM) acoustic model on senone targets (stages 7, 9, 13).

  python -m asrkit.bin.train_nnet --config conf/teacher.yaml \
      --train-cuts exp/senone/cuts_train_sup.jsonl.gz --dev-cuts exp/senone/cuts_dev.jsonl.gz \
      --cmvn data/cmvn.npz --num-senones 1200 --out-dir exp/teacher [--num-epochs 8 --lr 5e-4 ...]

The yaml holds fields of asrkit.nnet.train.TrainConfig (flat, or under a ``train:`` key as in the
config.yaml a run writes); every field is also a flag (--field-name VALUE) that overrides it. Booleans
take true/false; optional fields take "none". A run restarted with the same --out-dir resumes from its
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
import os
import sys
from dataclasses import fields
from pathlib import Path

from asrkit.utils.dirlock import claim_output, releases_claims
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.train_nnet")


def _parse_bool(s: str) -> bool:
    v = str(s).lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def _converter(type_name: str):
    base = type_name.replace("Optional[", "").rstrip("]")
    conv = {"int": int, "float": float, "str": str, "bool": _parse_bool}[base]
    if type_name.startswith("Optional["):
        return lambda s: None if str(s).lower() in ("none", "null", "") else conv(s)
    return conv


def build_parser():
    from asrkit.nnet.train import TrainConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="yaml of TrainConfig fields")
    p.add_argument("--train-cuts", required=True, help="cuts with fbank and senone targets (stage 6)")
    p.add_argument("--dev-cuts", default=None, help="dev cuts: frame accuracy, best.pt, newbob")
    p.add_argument("--cmvn", required=True, help="data/cmvn.npz (global CMVN of the 64-dim fbank)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--no-resume", action="store_true", help="refuse to start if out-dir holds checkpoints")
    p.add_argument("--tree", default=None, help="optional: the senone tree; under torchrun every rank must have "
                                                "the same file (checksum compared at start)")
    p.add_argument("--verbose", action="store_true")
    from asrkit.nnet.train import add_dist_args

    add_dist_args(p)
    g = p.add_argument_group("TrainConfig fields (override the yaml)")
    for f in fields(TrainConfig):
        type_name = f.type if isinstance(f.type, str) else f.type.__name__
        g.add_argument("--" + f.name.replace("_", "-"), dest="cfg_" + f.name, type=_converter(type_name),
                       default=argparse.SUPPRESS, help=f"{type_name}, default {f.default!r}")
    return p


def load_config(path, overrides):
    import yaml

    from asrkit.nnet.train import TrainConfig

    d = {}
    if path:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"config not found: {p}")
        d = yaml.safe_load(p.read_text()) or {}
        if "train" in d and isinstance(d["train"], dict):
            d = d["train"]
    d.update(overrides)
    return TrainConfig.from_dict(d)


@releases_claims
def main(argv=None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    overrides = {k[4:]: v for k, v in vars(a).items() if k.startswith("cfg_")}
    from asrkit.distributed.launch import ConfigMismatchError as DistConfigMismatch
    from asrkit.distributed.launch import cleanup, file_checksum
    from asrkit.nnet.train import mark_finished, setup_distributed, sync_config_from_args, train

    try:
        cfg = load_config(a.config, overrides)
        sync = sync_config_from_args(a)
    except (FileNotFoundError, ValueError) as e:
        p.error(str(e))
    for path in (a.train_cuts, a.dev_cuts, a.cmvn, a.tree):
        if path and not Path(path).exists():
            p.error(f"not found: {path}")
    if int(os.environ.get("RANK", "0")) == 0:  # one lock per run: rank 0's (the others write no files)
        claim_output(a.out_dir, "train_nnet")
    info = setup_distributed(a.dist_backend)
    consistency = {"tree": file_checksum(a.tree)} if a.tree else None
    try:
        res = train(cfg, a.train_cuts, a.dev_cuts, a.cmvn, a.out_dir, resume=not a.no_resume, sync=sync,
                    consistency=consistency, check_sync_every=a.check_sync_every, dist_backend=a.dist_backend)
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
