"""Transcribe audio files with an exported model (python -m asrkit.bin.export_model).

  python -m asrkit.bin.transcribe --model model/ a.wav b.flac ...
  python -m asrkit.bin.transcribe --model model/ --list files.txt --ctm out.ctm
  python -m asrkit.bin.transcribe --model model/ --wav-scp data/test/wav.scp > hyp.txt
  python -m asrkit.bin.transcribe --model model/ --streaming --chunk 16 a.wav

Prints ``<name> <words>`` for each file on stdout (name: the file's base name without extension, or
the wav.scp key); logs the real-time factor. Other sample rates are resampled to 16 kHz and several
channels averaged, with a logged note. Files that are missing, not audio, truncated, empty or shorter than
one 30 ms frame are skipped, named and counted; the exit status is 1 only if nothing was transcribed.
--streaming feeds the audio in chunks of --chunk 30 ms frames, as from a microphone, and prints each
changed partial hypothesis on stderr, then the final one on stdout (the same as without --streaming),
and the processing time per chunk. --stored-features quantises the fbank as the recipes store it
(lilcom), which reproduces the recipe's decoding of its own sets exactly (offline only).
"""
from __future__ import annotations

import argparse
import logging
import sys

from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.transcribe")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.transcribe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", help="audio files (any format libsndfile reads)")
    p.add_argument("--model", required=True, help="model directory (asrkit.bin.export_model)")
    p.add_argument("--list", default=None, help="a file with one audio path a line")
    p.add_argument("--wav-scp", default=None, help="a Kaldi wav.scp (paths or 'command |')")
    p.add_argument("--ctm", default=None, help="write word timings here (Kaldi CTM)")
    p.add_argument("--streaming", action="store_true", help="chunk by chunk, partial hypotheses on stderr")
    p.add_argument("--chunk", type=int, default=None,
                   help="30 ms frames per network chunk (and per audio chunk when streaming); default: the "
                        "model's (the recipe's stream_chunk)")
    p.add_argument("--lm-weight", type=float, default=None, help="instead of the weight chosen on dev")
    p.add_argument("--stored-features", action="store_true",
                   help="quantise the fbank as the recipes store it (reproduces their decoding; offline only)")
    p.add_argument("--num-threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    if not (a.files or a.list or a.wav_scp):
        p.error("give audio files, --list or --wav-scp")
    if a.streaming and a.stored_features:
        p.error("--stored-features needs the whole utterance: not with --streaming")

    import torch

    from asrkit.infer.model_dir import ModelDirError, load_model_dir
    from asrkit.infer.recognizer import make_recognizer
    from asrkit.infer.transcribe import read_inputs, transcribe
    from asrkit.utils.atomic import atomic_path

    torch.set_num_threads(max(1, a.num_threads))
    try:
        inputs = read_inputs(a.files, a.list, a.wav_scp)
        rec = make_recognizer(load_model_dir(a.model), lm_weight=a.lm_weight, chunk=a.chunk)
        if a.streaming and not rec.streaming_network:
            raise ValueError(f"{a.model} holds a bidirectional network (the teacher) or a GMM: it cannot stream")
    except (ModelDirError, FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 1

    def emit(name, words):
        print(f"{name} {' '.join(words)}".rstrip(), flush=True)

    def partial(name, seconds, words):
        print(f"[partial {seconds:6.2f} s] {name} {' '.join(words)}".rstrip(), file=sys.stderr, flush=True)

    ctm_lines = []
    summary = transcribe(rec, inputs, emit, streaming=a.streaming, partial=partial if a.streaming else None,
                         ctm=ctm_lines.extend if a.ctm else None, stored_features=a.stored_features)
    if a.ctm:
        with atomic_path(a.ctm) as tmp:
            tmp.write_text("".join(line + "\n" for line in ctm_lines), encoding="utf-8")
    if summary.done == 0:
        log.error("nothing could be transcribed (%d input(s) skipped)", len(summary.skipped))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
