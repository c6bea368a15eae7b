"""Pack a student's training manifest into sequential training shards (``TrainConfig.loader: shards``).

  # labelled cuts (stage-6 senone targets), e.g. after stage 6
  python -m asrkit.bin.write_train_shards --kind hard --cuts exp/senone/cuts_train_sup.jsonl.gz \\
      --num-senones 1200 --out-dir exp/shards/train_sup
  # machine-labelled cuts with their pseudo-labels, after stage 10
  python -m asrkit.bin.write_train_shards --kind soft --cuts data/fbank/cuts_train_unsup.jsonl.gz \\
      --pseudo-dir exp/pseudo --tree exp/senone/tree --num-senones 1200 --out-dir exp/shards/train_unsup

  python -m asrkit.bin.train_student --loader shards --labelled-shards exp/shards/train_sup \\
      --machine-shards exp/shards/train_unsup ...

Each cut's stored 10 ms features (lilcom bytes where lossless, see --feats-codec), its targets (senones, or the raw top-k pseudo-labels) and its
manifest line go into shards of at most --max-mb MiB (written under temporary names, renamed when whole,
each with a blake2b in its sidecar and in index.json, which is written last). Cuts are checked as the
manifest loader checks them; machine-labelled cuts without pseudo-labels are left out and counted. An
existing set in --out-dir is refused unless --force. See asrkit/pseudo/trainshards.py and
asrkit/nnet/shard_loader.py.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import List, Optional

from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.write_train_shards", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=("hard", "soft"), required=True,
                   help="hard: labelled cuts (senones); soft: machine-labelled cuts (--pseudo-dir)")
    p.add_argument("--cuts", nargs="+", required=True, help="fbank cut manifests (.jsonl.gz), packed in order")
    p.add_argument("--pseudo-dir", default=None, help="soft: the pseudo-label shards + index.json (exp/pseudo)")
    p.add_argument("--tree", default=None, help="soft: the student's senone tree; the labels must carry its checksum")
    p.add_argument("--num-senones", type=int, default=None, help="the senone inventory (checked)")
    p.add_argument("--max-mb", type=float, default=32.0,
                   help="largest shard, MiB (default 32: what a reading stream holds of it)")
    p.add_argument("--feats-codec", choices=("lilcom", "float32"), default="lilcom",
                   help="lilcom (default): the frames as lilcom bytes where that gives them back bit for bit (3-4x "
                        "smaller; features from lhotse's lilcom archives), float32 elsewhere; float32: always")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--force", action="store_true", help="replace a set already in --out-dir")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    if a.kind == "soft" and a.pseudo_dir is None:
        p.error("--kind soft needs --pseudo-dir")
    for path in [*a.cuts, a.pseudo_dir, a.tree]:
        if path and not Path(path).exists():
            p.error(f"not found: {path}")
    setup_logging(a.verbose)
    from asrkit.nnet.shard_loader import write_training_shards
    from asrkit.pseudo.shards import LabelMismatchError, ShardError
    from asrkit.nnet.ssl import open_pseudo_labels

    out = Path(a.out_dir)
    if (out / "index.json").exists() and not a.force:
        logging.error("write_train_shards: %s already holds a shard set (--force replaces it)", out)
        return 1
    if out.exists() and a.force:
        shutil.rmtree(out)
    try:
        labels = open_pseudo_labels(a.pseudo_dir, a.num_senones, a.tree) if a.kind == "soft" else None
        index = write_training_shards(a.cuts, out, a.kind, labels, a.num_senones, int(a.max_mb * 2**20),
                                      feats_codec=a.feats_codec)
    except (LabelMismatchError, ShardError, FileNotFoundError, ValueError) as e:
        logging.error("write_train_shards: %s", e)
        return 1
    print(f"write_train_shards: {index['num_cuts']} {a.kind} cuts ({index['num_frames']} frames) in "
          f"{index['num_shards']} shards -> {out}" + (f"; {index['left_out']} left out" if index["left_out"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
