"""Realign labelled sets with a trained network: new senone targets in stage 6's format (issue 13).

  python -m asrkit.bin.realign_nnet --model exp/teacher/best.pt --senone-dir exp/senone \
      --lang data/lang_senone --cmvn data/cmvn.npz --sets train_sup,dev --out-dir exp/senone_realign

Each cut of <senone-dir>/cuts_<set>.jsonl.gz is force-aligned through its transcript's training graph
(the senone model <senone-dir>/final.mdl over --lang) with the network's log-posteriors minus the log
priors of <senone-dir>/senone_counts.npy, scaled by --acoustic-scale (Kaldi's nnet realignment, see
asrkit.senone.realign). <out-dir> becomes a senone dir the network stages read like exp/senone:
cuts_<set>.jsonl.gz + targets/, new priors (senone_counts.npy, occupancy.txt), tree, final.mdl, graph
(a link), left_out_<set>.txt (cuts whose alignment failed, with the reason) and realign.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from asrkit.utils.cli import add_force, add_out_dir, add_verbose
from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.realign_nnet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the network: best.pt or any checkpoint")
    p.add_argument("--senone-dir", required=True, help="stage 6's senone dir (exp/senone)")
    p.add_argument("--lang", required=True, help="the one-state lang dir (data/lang_senone)")
    p.add_argument("--cmvn", required=True, help="data/cmvn.npz")
    p.add_argument("--sets", default="train_sup,dev", help="sets to realign, comma separated (train_sup among them)")
    p.add_argument("--train-set", default="train_sup", help="the set whose realigned targets give the priors")
    add_out_dir(p, "the new senone dir (e.g. exp/senone_realign)")
    p.add_argument("--acoustic-scale", type=float, default=0.1)
    p.add_argument("--beam", type=float, default=10.0)
    p.add_argument("--retry-beam", type=float, default=40.0)
    p.add_argument("--device", default="auto")
    p.add_argument("--num-threads", type=int, default=1, help="torch CPU threads (default 1, as nnet_forward)")
    add_force(p, "realign sets that are done (a set is redone anyway when the model is newer)")
    add_verbose(p)
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    sets = [s for s in a.sets.replace(",", " ").split() if s]
    senone = Path(a.senone_dir)
    for path in [a.model, a.cmvn, senone / "senone_counts.npy"] + [senone / f"cuts_{s}.jsonl.gz" for s in sets]:
        if not Path(path).exists():
            p.error(f"not found: {path}")
    from asrkit.senone.realign import RealignConfig, is_up_to_date, realign

    if not a.force and is_up_to_date(senone, a.out_dir, sets, [a.model]):  # the network is not even loaded
        logging.getLogger("asrkit.bin.realign_nnet").info("%s is up to date (sets %s); --force redoes it",
                                                          a.out_dir, ",".join(sets))
        return 0
    import torch

    from asrkit.nnet.infer import PosteriorScorer
    from asrkit.nnet.train import pick_device

    if a.num_threads > 0:
        torch.set_num_threads(a.num_threads)
    scorer = PosteriorScorer(a.model, a.cmvn, senone / "senone_counts.npy",
                             *[senone / f"cuts_{s}.jsonl.gz" for s in sets], device=pick_device(a.device))
    config = RealignConfig(acoustic_scale=a.acoustic_scale, beam=a.beam, retry_beam=a.retry_beam, train_set=a.train_set)
    try:
        summary = realign(senone_dir=senone, lang=a.lang, sets=sets, scorer=scorer, out_dir=a.out_dir, config=config,
                          force=a.force, inputs=[a.model])
    except (FileNotFoundError, ValueError) as e:
        logging.getLogger("asrkit.bin.realign_nnet").error("%s", e)
        return 1
    print("realign_nnet: " + json.dumps({"sets": summary.sets, "seconds": summary.seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
