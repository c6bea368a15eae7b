#!/usr/bin/env python3
"""Stage 0 of egs/librispeech/s5 --tiny true: a small synthetic corpus in LibriSpeech's layout.

Writes <out>/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac with the chapters'
<spk>-<chapter>.trans.txt, and <out>/librispeech-lm-norm.txt.gz, for all seven subsets
(see asrkit.synth.librispeech). A re-run finishes an interrupted one and skips a complete one.

Example: local/make_tiny_librispeech.py --seed 0 --nj 2 corpus
"""
import os

for _k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_k, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from asrkit.synth.espeak import EspeakError  # noqa: E402
from asrkit.synth.librispeech import make_tiny_librispeech  # noqa: E402
from asrkit.utils.logging import setup_logging  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", help="output folder; LibriSpeech/ is made inside it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    try:
        make_tiny_librispeech(a.out_dir, seed=a.seed, nj=a.nj, progress=not a.no_progress)
    except (EspeakError, ValueError, RuntimeError, FileNotFoundError) as e:
        logging.getLogger("make_tiny_librispeech").error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
