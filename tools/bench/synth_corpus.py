#!/usr/bin/env python3
"""Benchmark of the synthetic corpus generator: audio seconds made per CPU second (target >= 60).

CPU seconds are those of this process and of its worker processes (getrusage), everything included:
planning, espeak, resampling, noise / babble / reverberation, FLAC writing, data dirs.

    .venv/bin/python tools/bench/synth_corpus.py [--minutes 10] [--nj 2] [--seed 0]
"""
import os

for _k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_k, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from asrkit.synth.corpus import SPLITS, SynthConfig, make_corpus  # noqa: E402


def cpu_seconds() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="total minutes of audio (split like the default)")
    p.add_argument("--nj", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", help="write the corpus here instead of a temporary folder")
    a = p.parse_args()
    d = SynthConfig()
    total_h = sum(d.hours.values())
    cfg = SynthConfig(seed=a.seed, hours={s: h / total_h * a.minutes / 60 for s, h in d.hours.items()},
                      speakers={s: max(2, int(n * min(1.0, a.minutes / 60 / total_h * 4))) for s, n in d.speakers.items()})
    out = a.keep or tempfile.mkdtemp(prefix="synth_bench_")
    try:
        t0, c0 = time.time(), cpu_seconds()
        info = make_corpus(out, cfg, nj=a.nj, progress=False)
        wall, cpu = time.time() - t0, cpu_seconds() - c0
    finally:
        if not a.keep:
            shutil.rmtree(out, ignore_errors=True)
    secs = sum(v["hours"] for v in info["splits"].values()) * 3600
    utts = sum(v["utterances"] for v in info["splits"].values())
    rows = [("nj", f"{a.nj}"), ("utterances", f"{utts}"), ("audio seconds", f"{secs:.1f}"),
            ("CPU seconds", f"{cpu:.2f}"), ("audio-s per CPU-s", f"{secs / cpu:.1f}"),
            ("wall seconds", f"{wall:.2f}"), ("audio-s per wall-s", f"{secs / wall:.1f}")]
    w = max(len(k) for k, _ in rows)
    print(f"{'metric':<{w}}  value")
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
