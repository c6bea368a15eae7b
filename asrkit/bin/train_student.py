"""Train a student on labelled + machine-labelled data (stages 11-13): supervised, interleaved, segregated.

  python -m asrkit.bin.train_student --mode interleaved --config conf/student.yaml \
      --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz \
      --unlabelled-cuts data/fbank/cuts_train_unsup.jsonl.gz --pseudo-dir exp/pseudo --tree exp/senone/tree \
      --dev-cuts exp/senone/cuts_dev.jsonl.gz --cmvn data/cmvn.npz --num-senones 1200 \
      --labelled-lr-mult 2.0 [--ratio 3] [--equal-updates true] --out-dir exp/student_ssl_inter [--num-epochs 8 ...]

Modes: ``supervised`` (labelled batches only: the baseline; with several --labelled-cuts, e.g.
``exp/senone/cuts_train_sup.jsonl.gz exp/senone/cuts_train_unsup_oracle.jsonl.gz``, the oracle
student), ``interleaved`` (``--ratio`` machine batches per labelled batch, default: spread so that both
end together), ``segregated`` (the same batches as the interleaved run, over the whole run every
machine-labelled one first, then the labelled ones). Labelled batches train at the scheduler's learning
rate times ``--labelled-lr-mult`` in every mode (the supervised student too, so that the comparison is
at equal learning rates; ``--labelled-lr-mult 1`` for plain training), machine batches times
``--machine-lr-mult``. ``--equal-updates true``: exactly as many updates as the supervised student of
the config's epochs on the first --labelled-cuts (``--max-updates N``: a budget of N). The pseudo-labels must have been made for the student's senone
tree (``--tree``) and ``--num-senones``. See asrkit/nnet/ssl.py.

``--loader shards`` (or ``loader: shards`` in the config): batches from sequential training shards
(``asrkit.bin.write_train_shards``) given as ``--labelled-shards`` / ``--machine-shards`` instead of the
manifests and ``--pseudo-dir``, batched by a streaming duration-bucketing sampler (a buffer of
``--shuffle-buffer`` chunks): memory flat in the number of cuts, other batches than the default loader's,
resumed exactly. One process only (no torchrun), ``cmvn_mode`` global or utterance. See
asrkit/nnet/shard_loader.py.

TrainConfig fields come from --config (flat, or under ``train:``) and are overridden by flags, as in
asrkit.bin.train_nnet. A run restarted with the same --out-dir resumes (exactly, schedule position
included). Writes checkpoint-<step>.pt, epoch-<n>.pt, best.pt, config.yaml (with an ``ssl:`` section),
history.jsonl, tensorboard/ and a .best.pt.done marker when training finished.

Several processes: ``torchrun --standalone --nproc_per_node=N [--max-restarts 1] -m asrkit.bin.train_student
... --sync ddp|gtc|bmuf|ma`` (as asrkit.bin.train_nnet): every rank takes its positions of each epoch's
schedule; the tree checksum, num_senones, model and sync settings must agree across ranks; rank 0
writes checkpoints, logs, TensorBoard and comm.json.
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
from asrkit.features.reader import FeatureReader
from asrkit.nnet.ssl import MODES, SslConfig, SslTrainer, open_pseudo_labels
from asrkit.nnet.train import mark_finished
from asrkit.pseudo.shards import LabelMismatchError, ShardError, tree_checksum
from asrkit.utils.cli import parse_bool
from asrkit.utils.dirlock import releases_claims
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.train_student")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.train_student", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--config", default=None, help="yaml of TrainConfig fields")
    p.add_argument("--labelled-cuts", nargs="+", default=None,
                   help="cuts with fbank and senone targets (stage 6); several are concatenated")
    p.add_argument("--unlabelled-cuts", default=None, help="fbank cuts of train_unsup (not for supervised)")
    p.add_argument("--pseudo-dir", default=None, help="pseudo-label shards + index.json (exp/pseudo)")
    p.add_argument("--tree", default=None, help="the student's senone tree (exp/senone/tree): the labels must "
                                                "carry its checksum")
    p.add_argument("--labelled-shards", default=None, help="--loader shards: the labelled training shards "
                   "(asrkit.bin.write_train_shards --kind hard); --labelled-cuts then only for --equal-updates")
    p.add_argument("--machine-shards", default=None, help="--loader shards: the machine-labelled training shards "
                   "(--kind soft); replace --unlabelled-cuts and --pseudo-dir")
    p.add_argument("--dev-cuts", default=None, help="dev cuts: frame accuracy, best.pt, newbob")
    p.add_argument("--cmvn", required=True, help="data/cmvn.npz")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--ratio", default=None, help="interleaved: machine batches per labelled batch "
                                                 "(e.g. 3, 2.5, 7/2; default: both lists end together)")
    p.add_argument("--labelled-lr-mult", type=float, default=2.0,
                   help="LR multiplier on labelled batches, in every mode (supervised too; 1: plain training)")
    p.add_argument("--machine-lr-mult", type=float, default=1.0, help="LR multiplier on machine batches")
    p.add_argument("--machine-max-frames", type=int, default=None,
                   help="padded frames per machine batch (default: --max-frames)")
    p.add_argument("--equal-updates", type=parse_bool, default=False,
                   help="true: a budget of exactly the updates that the supervised student makes in --num-epochs (or "
                        "the config's) epochs on the first --labelled-cuts, over epochs that pass over all the data")
    p.add_argument("--no-verify", action="store_true", help="do not verify the shards' checksums")
    p.add_argument("--no-resume", action="store_true", help="refuse to start if out-dir holds checkpoints")
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
        ssl = SslConfig(a.mode, a.ratio, a.labelled_lr_mult, a.machine_lr_mult, a.machine_max_frames,
                        a.equal_updates)
        sync = sync_config_from_args(a)
    except (FileNotFoundError, ValueError) as e:
        p.error(str(e))
    if a.mode == "supervised" and a.labelled_lr_mult != 1.0:
        log.info("supervised mode: every batch at the LR times --labelled-lr-mult %g (1 for plain training)",
                 a.labelled_lr_mult)
    shards = cfg.loader == "shards"
    if not shards and a.labelled_cuts is None:
        p.error("the following arguments are required: --labelled-cuts")
    if shards:
        for name in ("labelled_shards",) + (("machine_shards",) if a.mode != "supervised" else ()):
            if getattr(a, name) is None:
                p.error(f"--loader shards, --mode {a.mode} needs --{name.replace('_', '-')}")
    elif a.mode != "supervised":
        for name in ("unlabelled_cuts", "pseudo_dir", "tree"):
            if getattr(a, name) is None:
                p.error(f"--mode {a.mode} needs --{name.replace('_', '-')}")
    for path in [*(a.labelled_cuts or []), a.unlabelled_cuts, a.pseudo_dir, a.tree, a.dev_cuts, a.cmvn,
                 a.labelled_shards, a.machine_shards]:
        if path and not Path(path).exists():
            p.error(f"not found: {path}")
    claim_run_dir(a.out_dir, "train_student")
    info = setup_distributed(a.dist_backend)
    consistency = {"tree": file_checksum(a.tree)} if a.tree else None
    try:
        labels = (open_pseudo_labels(a.pseudo_dir, cfg.num_senones, a.tree, verify=not a.no_verify)
                  if a.mode != "supervised" and not shards else None)
        shard_dirs = ({"labelled": a.labelled_shards, "machine": a.machine_shards, "verify": not a.no_verify,
                       "tree_checksum": tree_checksum(a.tree) if a.tree else None} if shards else None)
        trainer = SslTrainer(cfg, a.labelled_cuts, a.unlabelled_cuts, a.dev_cuts, FeatureReader(a.cmvn, stack=True),
                             a.out_dir, ssl, labels, step_hook=step_hook, resume=not a.no_resume, shards=shard_dirs,
                             sync=sync,
                             consistency=consistency, check_sync_every=a.check_sync_every, dist_backend=a.dist_backend)
    except (LabelMismatchError, ShardError, FileNotFoundError, FileExistsError, ValueError,
            DistConfigMismatch) as e:
        logging.error("train_student (rank %d): %s", info.rank, e)
        cleanup()
        return 1
    res = trainer.run()
    if info.rank == 0:
        mark_finished(res)
        print(f"train_student ({a.mode}): {res.step} steps, {res.epoch} epochs, best dev frame accuracy "
              f"{res.best_dev_acc:.4f}, stopped: {res.stopped}, out: {res.out_dir}")
    cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
