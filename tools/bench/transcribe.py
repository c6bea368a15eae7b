"""Benchmark: transcription speed (real-time factor) and streaming latency per chunk of asrkit.infer.

  .venv/bin/python tools/bench/transcribe.py --recipe egs/synth/s5 [--set test_clean] [--presets small paper]

Uses a trained recipe's senone tree, graph (HCLG), CMVN, priors, dev LM weight and decoder options and its
set's audio. For each preset (asrkit.nnet.presets: ``small`` is the recipes' default size, ``paper`` the
article's) a student (LSTM) and a teacher (BLSTM) with random weights of that size and the recipe's number
of senones stand in for trained ones (speed does not depend on what the weights learnt, except the search,
which a random network's flat scores make slower rather than faster). Offline: features + network +
search per file, audio reading excluded; streaming: the student fed ``--chunk`` 30 ms frames at a time,
processing time per chunk. One torch thread, as the recipes' decoding. Prints a table: wall-clock and
this process's CPU time (on shared, oversubscribed cores the CPU time is what the work costs alone).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def random_system(recipe: Path, work: Path, role: str, preset_name: str, num_senones: int, like: str) -> Path:
    """A recipe layout under ``work`` whose system ``<role>_<preset>`` is a random network."""
    import torch

    from asrkit.nnet.checkpoint import FORMAT
    from asrkit.nnet.models import build_model
    from asrkit.nnet.presets import preset

    exp = work / "exp"
    if not exp.exists():
        exp.mkdir(parents=True)
        os.symlink((recipe / "exp" / "senone").resolve(), exp / "senone")
        os.symlink((recipe / "data").resolve(), work / "data")
    name = f"{role}_{preset_name}"
    d = exp / name
    (d / "decode_dev").mkdir(parents=True)
    cfg = preset(role, preset_name, num_senones=num_senones, dropout=0.0)
    torch.manual_seed(0)
    torch.save({"format": FORMAT, "model_config": cfg.to_dict(), "model": build_model(cfg).state_dict()},
               d / "best.pt")
    for f in ("best_wer", "summary.json"):
        shutil.copyfile(recipe / "exp" / like / "decode_dev" / f, d / "decode_dev" / f)
    return exp


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="egs/synth/s5", help="a recipe dir with stages 0-8 done")
    p.add_argument("--set", default="test_clean")
    p.add_argument("--presets", nargs="+", default=["small"])
    p.add_argument("--chunk", type=int, default=32, help="streaming chunk in 30 ms frames (recipes: 32)")
    p.add_argument("--max-files", type=int, default=12)
    a = p.parse_args()

    import torch

    from asrkit.infer.audio import load_audio
    from asrkit.infer.model_dir import recipe_model
    from asrkit.infer.recognizer import Recognizer

    torch.set_num_threads(1)
    recipe = Path(a.recipe).resolve()
    num_senones = len(np.load(recipe / "exp" / "senone" / "senone_counts.npy"))
    wavs = []
    for line in (recipe / "data" / a.set / "wav.scp").read_text().splitlines()[:a.max_files]:
        utt, wav = line.split(maxsplit=1)
        wavs.append(load_audio(wav if Path(wav).is_absolute() else str(recipe / wav)).samples)
    audio = sum(len(w) for w in wavs) / 16000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.presets:
            for role, like in (("student", "student_sup"), ("teacher", "teacher")):
                exp = random_system(recipe, Path(tmp), role, name, num_senones, like)
                rec = Recognizer(recipe_model(exp, f"{role}_{name}", chunk=a.chunk))
                params = rec.network.num_parameters()
                rec.recognize(wavs[0])  # warm-up
                t0, c0 = time.perf_counter(), time.process_time()
                for w in wavs:
                    rec.recognize(w)
                offline, cpu = time.perf_counter() - t0, time.process_time() - c0
                lat = ""
                if role == "student":
                    per_chunk, per_chunk_cpu = [], []
                    n = a.chunk * 480
                    for w in wavs:
                        s = rec.stream()
                        for i in range(0, len(w), n):
                            c0 = time.process_time()
                            per_chunk.append(s.accept(w[i:i + n]).seconds)
                            per_chunk_cpu.append(time.process_time() - c0)
                        s.finish()
                    ms, cms = np.asarray(per_chunk) * 1000, np.asarray(per_chunk_cpu) * 1000
                    lat = (f"{ms.mean():.1f} / {np.percentile(ms, 95):.1f} / {ms.max():.1f}"
                           f" (CPU {cms.mean():.1f} / {np.percentile(cms, 95):.1f} / {cms.max():.1f})")
                rows.append((f"{role} ({name})", f"{params / 1e6:.2f} M", f"{audio:.1f}", f"{offline:.2f}",
                             f"{offline / audio:.4f}", f"{cpu / audio:.4f}", lat or "-"))
    print(f"\ntranscription on {a.set} of {recipe} ({len(wavs)} files, {num_senones} senones), 1 torch thread, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    head = ("system", "parameters", "audio s", "offline s", "RTF (wall)", "RTF (CPU)",
            f"chunk of {a.chunk * 30} ms: mean/p95/max ms, wall (CPU)")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
