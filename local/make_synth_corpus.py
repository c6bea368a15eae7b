#!/usr/bin/env python3
"""Stage 0 of the synthetic recipe: generate the espeak-ng corpus (see docs/file-contracts.md).

Example: local/make_synth_corpus.py --nj 2 --seed 0 corpus
         local/make_synth_corpus.py --tiny --nj 2 /tmp/tiny_corpus
"""
import os

for _k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_k, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from asrkit.synth.corpus import SPLITS, SynthConfig, make_corpus  # noqa: E402
from asrkit.synth.espeak import EspeakError  # noqa: E402
from asrkit.utils.logging import setup_logging  # noqa: E402


def _pair(text: str):
    a, b = (float(x) for x in text.split(","))
    return (a, b)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus_dir", help="output folder (e.g. corpus)")
    p.add_argument("--nj", type=int, default=2, help="parallel worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="about 30 s of audio and 2 speakers per split (tests)")
    d = SynthConfig()
    for s in SPLITS:
        p.add_argument(f"--hours-{s.replace('_', '-')}", type=float, default=None,
                       help=f"hours of audio of {s} (default {d.hours[s]:.3f})")
        p.add_argument(f"--speakers-{s.replace('_', '-')}", type=int, default=None,
                       help=f"speakers of {s} (default {d.speakers[s]})")
    p.add_argument("--unsup-ratio", type=float, default=None,
                   help="train_unsup hours as a multiple of train_sup hours (overrides --hours-train-unsup)")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size, help="word types the generator may use")
    p.add_argument("--zipf", type=float, default=d.zipf, help="Zipf exponent of word choice within a class")
    p.add_argument("--snr-range", type=_pair, default=d.snr_range, metavar="LO,HI", help="SNR range in dB")
    p.add_argument("--rt60-range", type=_pair, default=d.rt60_range, metavar="LO,HI", help="RT60 range in s")
    p.add_argument("--pitch-spread", type=float, default=d.pitch_spread, help="speaker pitch 50 +/- this")
    p.add_argument("--rate-spread", type=float, default=d.rate_spread, help="relative speaking-rate spread")
    p.add_argument("--base-rate", type=int, default=d.base_rate, help="mean speaking rate (words/min)")
    p.add_argument("--voices", default=",".join(d.voices), help="comma-separated espeak-ng voices")
    p.add_argument("--variants", default=",".join(d.variants), help="comma-separated espeak-ng variants")
    p.add_argument("--config", help="a JSON file of SynthConfig fields (applied before the options above)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)

    cfg = SynthConfig.tiny(seed=a.seed) if a.tiny else SynthConfig(seed=a.seed)
    if a.config:
        with open(a.config) as f:
            base = cfg.to_dict()
            base.update(json.load(f))
            cfg = SynthConfig.from_dict(base)
    for s in SPLITS:
        h = getattr(a, f"hours_{s}")
        if h is not None:
            cfg.hours[s] = h
        n = getattr(a, f"speakers_{s}")
        if n is not None:
            cfg.speakers[s] = n
    if a.unsup_ratio is not None:
        cfg.hours["train_unsup"] = a.unsup_ratio * cfg.hours["train_sup"]
    cfg.vocab_size, cfg.zipf = a.vocab_size, a.zipf
    cfg.snr_range, cfg.rt60_range = a.snr_range, a.rt60_range
    cfg.pitch_spread, cfg.rate_spread, cfg.base_rate = a.pitch_spread, a.rate_spread, a.base_rate
    cfg.voices = tuple(v for v in a.voices.split(",") if v)
    cfg.variants = tuple(v for v in a.variants.split(",") if v)
    try:
        make_corpus(a.corpus_dir, cfg, nj=a.nj, progress=not a.no_progress)
    except (EspeakError, ValueError, RuntimeError) as e:
        logging.getLogger("make_synth_corpus").error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
