#!/usr/bin/env python
"""Benchmark: asrkit's feature extraction + lilcom storage against the bare lhotse extractor.

Makes its own audio (synthetic speech-like signal: a pitch-varying harmonic source with formant-like
amplitude modulation, pauses and noise), written as FLAC utterances to a temporary folder, then times,
in one process and interleaved over several rounds (best round kept):

* ``lhotse extract``: ``extractor.extract(samples, sr)`` in a loop over the preloaded samples, no storage,
  with torch's default threads and with one thread (the faster is the ratio's denominator: on a loaded
  2-core machine torch's second thread can make it several times slower);
* ``lhotse load FLAC + extract``: ``cut.load_audio()`` then ``extract``, no storage (ratio_load's denominator);
* ``asrkit compute_features``: the stage-2 library call with ``num_jobs=1``: reads the FLAC, extracts,
  writes lilcom archives and the cuts manifest (what the recipe runs).

The ratio (asrkit / lhotse frames per second) should be at least 0.7.
* ``lhotse compute_and_store_features``: lhotse's own read + extract + LilcomChunkyWriter, one process
  (ratio_store: the same work done by lhotse alone).

    .venv/bin/python tools/bench/features.py [--seconds 90] [--utt-seconds 3] [--rounds 3] [--kind fbank]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def make_audio(folder: Path, total_seconds: float, utt_seconds: float, sr: int = 16000, seed: int = 0):
    import soundfile as sf
    from lhotse import CutSet, Recording

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    recs, samples = [], []
    num_utts = max(1, int(round(total_seconds / utt_seconds)))
    for i in range(num_utts):
        dur = utt_seconds * rng.uniform(0.8, 1.2)
        t = np.arange(int(dur * sr)) / sr
        f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        src = sum(np.sin(k * phase) / k for k in range(1, 20))
        env = (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))) * (np.sin(2 * np.pi * 0.5 * t) > -0.6)
        x = 0.05 * src * env + 0.003 * rng.standard_normal(len(t))
        x = (x / max(1e-6, np.abs(x).max()) * 0.5).astype(np.float32)
        path = folder / f"utt{i:04d}.flac"
        sf.write(path, x, sr, subtype="PCM_16")
        recs.append(Recording.from_file(path, recording_id=f"utt{i:04d}"))
        samples.append(sf.read(path, dtype="float32")[0])
    return CutSet.from_cuts(r.to_cut() for r in recs), samples


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=90.0, help="total audio (default 90 s)")
    p.add_argument("--utt-seconds", type=float, default=3.0, help="mean utterance length (default 3 s)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best of each is kept")
    p.add_argument("--kind", choices=("fbank", "mfcc"), default="fbank")
    args = p.parse_args()

    import torch

    from asrkit.features.extract import compute_features, make_extractor

    tmp = Path(tempfile.mkdtemp(prefix="bench_features_"))
    try:
        cuts, samples = make_audio(tmp / "audio", args.seconds, args.utt_seconds)
        extractor = make_extractor(args.kind)
        extractor.extract(samples[0], 16000)  # warm-up
        threads = torch.get_num_threads()
        bare = {n: f"lhotse extract, {n} torch thread{'s' if n > 1 else ''}" for n in sorted({threads, 1})}
        load = "lhotse load FLAC + extract, 1 th"
        store = "lhotse compute_and_store_features"
        ours = "asrkit compute_features"
        best = {k: (0, float("inf")) for k in list(bare.values()) + [load, store, ours]}

        def keep(key, frames, seconds):
            best[key] = min(best[key], (frames, seconds), key=lambda v: v[1])

        for r in range(args.rounds):
            for nthreads, key in bare.items():
                torch.set_num_threads(nthreads)
                t0 = time.perf_counter()
                frames = sum(extractor.extract(x, 16000).shape[0] for x in samples)
                keep(key, frames, time.perf_counter() - t0)
            torch.set_num_threads(1)
            t0 = time.perf_counter()
            frames = sum(extractor.extract(c.load_audio()[0], 16000).shape[0] for c in cuts)
            keep(load, frames, time.perf_counter() - t0)
            torch.set_num_threads(threads)

            from lhotse import LilcomChunkyWriter

            t0 = time.perf_counter()
            stored = cuts.compute_and_store_features(extractor, tmp / f"lhotse{r}", num_jobs=1,
                                                     storage_type=LilcomChunkyWriter)
            keep(store, sum(c.num_frames for c in stored), time.perf_counter() - t0)
            for leftover in tmp.glob(f"lhotse{r}*"):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()

            t0 = time.perf_counter()
            summary = compute_features(cuts, tmp / f"out{r}", "bench", kind=args.kind, num_jobs=1,
                                       progress_bar=False)
            keep(ours, summary.frames, time.perf_counter() - t0)
            shutil.rmtree(tmp / f"out{r}")

        fps = {k: f / s for k, (f, s) in best.items()}
        base_fps = max(fps[k] for k in bare.values())
        print(f"\n{args.kind}: {len(samples)} utterances, {sum(len(x) for x in samples) / 16000:.1f} s of audio, "
              f"one process, best of {args.rounds} interleaved rounds")
        print(f"{'method':<34} {'frames':>8} {'seconds':>8} {'frames/s':>10} {'ratio':>6} {'ratio_load':>10} {'ratio_store':>11}")
        for name, (frames, dt) in best.items():
            print(f"{name:<34} {frames:>8d} {dt:>8.3f} {fps[name]:>10,.0f} {fps[name] / base_fps:>6.2f} "
                  f"{fps[name] / fps[load]:>10.2f} {fps[name] / fps[store]:>11.2f}")
        print("ratio: against the faster bare extractor on preloaded samples (goal >= 0.7); ratio_load: against "
              "reading the FLAC and extracting, i.e. the cost of storage and bookkeeping alone; ratio_store: against "
              "lhotse's own read + extract + lilcom storage of the same cuts")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
