"""Stage 10: label unlabelled cuts with the teacher's top-k posteriors (shards + index).

One job (of N, each labelling shards J-1, J-1+N, ...), then the merge:

    utils/run_local.sh JOB=1:4 exp/pseudo/log/label.JOB.log \\
      python -m asrkit.bin.pseudo_label --model exp/teacher/best.pt \\
        --cuts data/fbank/cuts_train_unsup.jsonl.gz --cmvn data/cmvn.npz --tree exp/senone/tree \\
        --out-dir exp/pseudo --k 20 --shard-size 500 --job JOB --nj 4
    python -m asrkit.bin.pseudo_label --out-dir exp/pseudo --merge-index

Under torchrun, without --job/--nj, rank R of N is job R+1 of N and rank 0 merges the indices
once every rank has finished (a barrier)::

    torchrun --standalone --nproc_per_node=4 -m asrkit.bin.pseudo_label --model exp/teacher/best.pt \
        --cuts data/fbank/cuts_train_unsup.jsonl.gz --cmvn data/cmvn.npz --tree exp/senone/tree \
        --out-dir exp/pseudo --num-threads 1

A re-run skips finished shards and redoes partial ones; the output is byte-identical to an
uninterrupted run. Features: ``asrkit.features.FeatureReader(cmvn)`` (64-dim fbank, CMVN at 10 ms,
stacked to 192 dims at 30 ms). The teacher is loaded from an ``asrkit.nnet`` checkpoint
(``asrkit-nnet-v1``: ``model_config`` + ``model`` state dict); ``--load-model-fn module:function``
replaces that loader with any ``function(path, device) -> torch.nn.Module`` mapping (B, T, D) features
to (B, T, num_senones) logits.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

from asrkit.utils.cli import add_nj
from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.pseudo_label", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", required=True, help="output folder (exp/pseudo)")
    p.add_argument("--merge-index", action="store_true",
                   help="only combine the per-job indices into <out-dir>/index.json with the totals")
    p.add_argument("--model", help="teacher checkpoint (exp/teacher/best.pt)")
    p.add_argument("--cuts", help="unlabelled cuts with fbank (data/fbank/cuts_train_unsup.jsonl.gz)")
    p.add_argument("--cmvn", help="global CMVN statistics (data/cmvn.npz)")
    p.add_argument("--tree", help="senone tree of the teacher's targets (exp/senone/tree): its checksum is "
                                  "recorded so that a student with another tree refuses the labels")
    p.add_argument("--num-senones", type=int, help="check the teacher's output size against this")
    p.add_argument("--k", type=int, default=20, help="posteriors kept per frame (default 20)")
    p.add_argument("--shard-size", type=int, default=500, help="utterances per shard (default 500)")
    p.add_argument("--job", type=int, default=None,
                   help="this job's index, 1-based (JOB; default 1, or RANK+1 under torchrun)")
    add_nj(p, default=None, help="number of jobs N (default 1, or WORLD_SIZE under torchrun, then rank 0 also "
                                 "merges the indices)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="teacher temperature: stores softmax(logits / T) (default 1)")
    p.add_argument("--min-confidence", type=float, default=0.0,
                   help="drop utterances whose mean top-1 posterior is under this (counted; default 0: keep all)")
    p.add_argument("--batch-frames", type=int, default=20000, help="padded frames per inference batch")
    p.add_argument("--max-batch-size", type=int, default=64, help="utterances per inference batch")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu; cuda under torchrun: cuda:LOCAL_RANK)")
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--load-model-fn", help="module:function(path, device) -> nn.Module, replacing the "
                                           "asrkit.nnet checkpoint loader")
    p.add_argument("--no-verify", action="store_true",
                   help="do not re-hash finished shards on resume / merge (faster, trusts the files)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--verbose", action="store_true")
    return p


def load_teacher(path: str, device: str = "cpu"):
    """An ``asrkit.nnet`` checkpoint -> the model in eval mode."""
    from asrkit.nnet.checkpoint import load_checkpoint
    from asrkit.nnet.models import ModelConfig, build_model

    ckpt = load_checkpoint(path)
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()


def _resolve(spec: str):
    mod, _, fn = spec.partition(":")
    if not fn:
        raise ValueError(f"--load-model-fn wants module:function, got {spec!r}")
    return getattr(importlib.import_module(mod), fn)


def _torchrun_jobs(args) -> bool:
    """Fills --job/--nj from RANK/WORLD_SIZE under torchrun; True when this run merges at the end."""
    import os

    if args.merge_index or args.job is not None or args.nj is not None or "WORLD_SIZE" not in os.environ:
        args.job = 1 if args.job is None else args.job
        args.nj = 1 if args.nj is None else args.nj
        return False
    args.job, args.nj = int(os.environ["RANK"]) + 1, int(os.environ["WORLD_SIZE"])
    if args.job > 1:
        logging.getLogger().setLevel(logging.WARNING)
    return args.nj > 1


def _barrier_and_merge(args, ok: bool) -> int:
    """torchrun: wait for every rank (all-reduce of the failures), then rank 0 merges the indices."""
    import torch
    import torch.distributed as dist

    from asrkit.distributed.launch import cleanup, init_distributed
    from asrkit.pseudo.label import merge_indices
    from asrkit.pseudo.stats import summary_line

    init_distributed("gloo")
    failed = torch.tensor([0 if ok else 1])
    dist.all_reduce(failed)
    rc = 0
    if int(failed) == 0 and args.job == 1:
        try:
            index = merge_indices(args.out_dir, verify=not args.no_verify)
            print(f"pseudo_label: {Path(args.out_dir) / 'index.json'}: {index['num_shards']} shards, "
                  f"{index['bytes']} bytes, {summary_line(index['totals'])}")
        except (FileNotFoundError, ValueError) as e:
            logging.error("merge: %s", e)
            rc = 1
    elif int(failed):
        logging.error("%d rank(s) failed: index not merged", int(failed))
        rc = 1
    cleanup()
    return rc if ok else 1


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    merge_after = _torchrun_jobs(args)
    rc = _main(args)
    return _barrier_and_merge(args, rc == 0) if merge_after else rc


def _main(args) -> int:
    from asrkit.pseudo.label import merge_indices
    from asrkit.pseudo.stats import summary_line

    try:
        if args.merge_index:
            index = merge_indices(args.out_dir, verify=not args.no_verify)
            print(f"pseudo_label: {Path(args.out_dir) / 'index.json'}: {index['num_shards']} shards, "
                  f"{index['bytes']} bytes, {summary_line(index['totals'])}")
            return 0
        missing = [n for n in ("model", "cuts") if getattr(args, n) is None]
        if missing:
            logging.error("missing %s (needed unless --merge-index)", ", ".join("--" + m for m in missing))
            return 2
        for p in (args.model, args.cuts, args.cmvn, args.tree):
            if p is not None and not Path(p).exists():
                logging.error("input not found: %s", p)
                return 1
        import torch

        if args.num_threads > 0:
            torch.set_num_threads(args.num_threads)
        from asrkit.features.reader import FeatureReader
        from asrkit.nnet.dataset import checkpoint_norm, load_cuts
        from asrkit.pseudo.label import label_cuts
        from asrkit.pseudo.shards import file_checksum, tree_checksum

        if args.device == "cuda" and "LOCAL_RANK" in os.environ:
            args.device = f"cuda:{os.environ['LOCAL_RANK']}"  # under torchrun: one GPU per process
        loader = _resolve(args.load_model_fn) if args.load_model_fn else load_teacher
        model = loader(args.model, args.device)
        reader = FeatureReader(args.cmvn) if args.cmvn else FeatureReader(None)
        if not args.load_model_fn:  # the teacher's normalisation (its checkpoint's train_config.cmvn_mode)
            reader = reader.with_norm(checkpoint_norm(args.model), args.cuts)
        index = label_cuts(model, load_cuts(args.cuts), reader, args.out_dir, shard_size=args.shard_size,
                           k=args.k, job=args.job, num_jobs=args.nj, num_senones=args.num_senones,
                           tree_checksum=tree_checksum(args.tree) if args.tree else None,
                           teacher=file_checksum(args.model), temperature=args.temperature,
                           min_confidence=args.min_confidence, batch_frames=args.batch_frames,
                           max_batch_size=args.max_batch_size, device=args.device,
                           input_dim=reader.dim, verify_existing=not args.no_verify,
                           progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as e:
        logging.error("%s", e)
        return 1
    print(f"pseudo_label job {args.job}/{args.nj}: {len(index['shards'])} shards, "
          f"{summary_line(index['totals'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
