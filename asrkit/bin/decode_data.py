"""Decode a data set with a trained system (network or GMM) (utils/decode_data.sh runs it as parallel jobs).

  # from a recipe dir: a system of exp/, or an exported model
  python -m asrkit.bin.decode_data --system student_ssl_inter --data data/test_clean --out-dir exp/x/decode_mydata
  python -m asrkit.bin.decode_data --model model/ --data /path/to/kaldi_dir --out-dir decode_mydata --nj 2
  python -m asrkit.bin.decode_data --model model/ --data cuts.jsonl.gz --out-dir decode_mydata

--step all (default) validates the data (the recipes' rules; bad utterances counted in
<out-dir>/validation.txt), computes fbank with the training CMVN, runs the network (a student chunk by chunk
as the recipe's streaming decode), decodes at the LM weight chosen on dev (--lm-weight to override) and,
when the data has a text file, scores it (wer_<w> with a bootstrap interval, best_wer). --step prepare /
decode --job J --nj N / merge --nj N are the parts utils/decode_data.sh runs.
"""
from __future__ import annotations

import argparse
import logging
import sys

from asrkit.bin.common.systems import add_system_args
from asrkit.utils.cli import add_nj, add_out_dir
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.decode_data")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.decode_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, help="an exported model directory")
    add_system_args(p, system_group=src)
    p.add_argument("--data", default=None, help="a Kaldi data dir or a lhotse cuts manifest")
    add_out_dir(p, "the decode dir")
    p.add_argument("--step", choices=("all", "prepare", "decode", "merge"), default="all")
    p.add_argument("--job", type=int, default=1, help="this job's number (1-based; --step decode)")
    add_nj(p, help="parallel parts the data is decoded in: --step all: decoder processes within this process; "
           "--step decode/merge: the jobs of utils/decode_data.sh (with --job)")
    p.add_argument("--num-procs", type=int, default=1, help="--step decode: decoder processes within this job")
    p.add_argument("--chunk", type=int, default=None, help="a student's chunk in 30 ms frames (default: the "
                   "model's, 32 for a recipe system)")
    p.add_argument("--audio-root", default=None, help="root of relative wav.scp paths (default: cwd)")
    p.add_argument("--min-duration", type=float, default=None, help="shortest utterance kept, seconds "
                   "(default: the recipes' validation rule)")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    if a.step in ("all", "decode") and not (a.model or a.system):
        p.error("--model or --system is required")
    if a.step in ("all", "prepare") and not a.data:
        p.error("--data is required")

    import torch

    from asrkit.data.validate import DEFAULT_MIN_DURATION
    from asrkit.infer import decode_data as dd
    from asrkit.infer.model_dir import ModelDirError, load_model_dir, recipe_model
    from asrkit.infer.systems import GmmSystem, is_gmm_system

    torch.set_num_threads(1)  # as nnet_forward: parallel jobs, not threads, on shared cores
    min_dur = DEFAULT_MIN_DURATION if a.min_duration is None else a.min_duration
    try:
        model = None
        if a.step in ("all", "decode"):
            if a.model:
                model = load_model_dir(a.model)
            elif is_gmm_system(a.exp_dir, a.system):
                model = GmmSystem.from_recipe(a.exp_dir, a.system)
            else:
                model = recipe_model(a.exp_dir, a.system, a.data_dir, chunk=a.chunk or 32)
        if a.step == "all":
            summary = dd.decode_data(model, a.data, a.out_dir, nj=a.nj, lm_weight=a.lm_weight, chunk=a.chunk,
                                     audio_root=a.audio_root, min_duration=min_dur)
        elif a.step == "prepare":
            summary = dd.prepare(a.data, a.out_dir, a.audio_root, min_dur)
        elif a.step == "decode":
            dd.decode_job(model, a.out_dir, a.job, a.nj, lm_weight=a.lm_weight, chunk=a.chunk, nj=a.num_procs)
            return 0
        else:
            summary = dd.merge(a.out_dir, a.nj)
    except (ModelDirError, FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 1
    if "wer" in summary:
        print(summary["wer"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
