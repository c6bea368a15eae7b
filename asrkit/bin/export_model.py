"""Export a trained system of a recipe (a network, or a GMM: mono, tri) as one self-contained model directory.

  cd egs/synth/s5
  python -m asrkit.bin.export_model --exp-dir exp --system student_ssl_inter --out-dir model/

Writes network weights and config, CMVN, senone priors, senone tree and transition model, the senone
HCLG with its word and phone tables, the lexicon, the frontend (frame rule), the LM weight chosen on the
dev set (exp/<system>/decode_dev/best_wer, or --lm-weight) and sha256 checksums in model.json
(asrkit/infer/model_dir.py); a GMM system's final.mdl, graph and lexicon. Then:
  python -m asrkit.bin.transcribe --model model/ a.wav b.flac
"""
from __future__ import annotations

import argparse
import logging
import sys

from asrkit.bin.common.systems import add_system_args
from asrkit.utils.cli import add_force, add_out_dir
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.export_model")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.export_model", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_system_args(p, system_required=True)
    add_out_dir(p, "the model directory to write")
    p.add_argument("--dev-set", default="dev", help="the set whose decoding chose the LM weight (default dev)")
    p.add_argument("--chunk", type=int, default=32,
                   help="streaming chunk of a student in 30 ms frames: the recipes' stream_chunk (default 32)")
    p.add_argument("--torchscript", action="store_true",
                   help="also write student.ts, a traced student checked bit-identical to the PyTorch one")
    add_force(p, "replace an existing --out-dir")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    from asrkit.infer.model_dir import ModelDirError, export_model

    try:
        out = export_model(a.exp_dir, a.system, a.out_dir, data_dir=a.data_dir, dev_set=a.dev_set,
                           lm_weight=a.lm_weight, chunk=a.chunk, overwrite=a.force, torchscript=a.torchscript)
    except (FileNotFoundError, FileExistsError, ModelDirError, ValueError) as e:
        log.error("%s", e)
        return 1
    print(f"export_model: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
