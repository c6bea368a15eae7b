"""Transcribe a batch of audio files with an exported model: one result per file, skips counted.

:func:`read_inputs` turns file arguments, a list file (one path a line) or a Kaldi ``wav.scp`` into
(name, source) pairs; :func:`transcribe` runs a :class:`~asrkit.infer.recognizer.Recognizer` over them,
offline or streaming, and returns a :class:`BatchSummary` (files done, skips per reason with the files,
audio seconds, processing seconds, real-time factor, per-chunk latencies when streaming). A file that
cannot be transcribed (:class:`~asrkit.infer.audio.AudioSkip`) is logged and counted, never fatal.
"""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from asrkit.data.kaldi_dir import read_table
from asrkit.infer.audio import AudioSkip, load_audio
from asrkit.infer.ctm import align_words, ctm_lines, phone_segments, phone_starts, read_lexicon_prons

log = logging.getLogger(__name__)


def read_inputs(files: Iterable[str] = (), list_file: Optional[str] = None,
                wav_scp: Optional[str] = None) -> List[Tuple[str, str]]:
    """(name, source) pairs: a file's name is its base name without extension; a wav.scp's its key."""
    out: List[Tuple[str, str]] = []
    paths = list(files)
    if list_file:
        lines = Path(list_file).read_text(encoding="utf-8").splitlines()
        paths += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    for p in paths:
        out.append((os.path.splitext(os.path.basename(p))[0] or p, p))
    if wav_scp:
        table = read_table(wav_scp, min_fields=2)
        if table.bad_lines:
            b = table.bad_lines[0]
            raise ValueError(f"{b.file}:{b.lineno}: {b.reason} {b.detail}")
        out += list(table.entries.items())
    seen: Counter = Counter(name for name, _ in out)
    # two files with one base name (a/x.wav, b/x.flac): name them by their paths instead
    return [(src if seen[name] > 1 and not wav_scp else name, src) for name, src in out]


@dataclass
class BatchSummary:
    done: int = 0
    skipped: List[Tuple[str, str, str]] = field(default_factory=list)  # name, reason, message
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0  # features + network + search (audio reading excluded)
    chunk_seconds: List[float] = field(default_factory=list)  # streaming: processing time of each chunk
    chunk_duration: float = 0.0  # streaming: audio per chunk

    @property
    def rtf(self) -> float:
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else float("nan")

    def skip_counts(self) -> Dict[str, int]:
        return dict(sorted(Counter(r for _, r, _ in self.skipped).items()))

    def latency(self) -> Dict[str, float]:
        if not self.chunk_seconds:
            return {}
        ms = np.asarray(self.chunk_seconds) * 1000
        return {"chunks": len(ms), "chunk_ms": round(self.chunk_duration * 1000, 1),
                "mean_ms": round(float(ms.mean()), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
                "max_ms": round(float(ms.max()), 2)}

    def line(self) -> str:
        counts = ", ".join(f"{r}={n}" for r, n in self.skip_counts().items())
        s = (f"transcribed {self.done} file(s), skipped {len(self.skipped)}" + (f" ({counts})" if counts else "")
             + f"; {self.audio_seconds:.2f} s of audio in {self.compute_seconds:.2f} s: real-time factor "
             f"{self.rtf:.4f}")
        lat = self.latency()
        if lat:
            s += (f"; streaming latency per {lat['chunk_ms']:.0f} ms chunk: mean {lat['mean_ms']:.1f} ms, "
                  f"p95 {lat['p95_ms']:.1f} ms, max {lat['max_ms']:.1f} ms ({lat['chunks']} chunks)")
        return s


class CtmWriter:
    """Word timings of each result, from the model's lexicon and the graph's transition table."""

    def __init__(self, rec):
        from asrkit.hmm import load_model as load_hmm

        self.prons = read_lexicon_prons(rec.model.file("lexicon.txt"))
        self.starts = phone_starts(load_hmm(rec.model.file("final.mdl")).transition_model)
        self.tid2phone = rec.graph.tid2phone
        self.frame_shift = rec.config.frame_shift
        self.id2phone = {}
        for line in rec.model.file("graph/phones.txt").read_text(encoding="utf-8").splitlines():
            f = line.split()
            if len(f) == 2:
                self.id2phone[int(f[1])] = f[0]

    def lines(self, name: str, result) -> List[str]:
        if not result.words:
            return []
        segs = phone_segments(result.tids, self.tid2phone, self.starts, self.id2phone)
        timed = align_words(result.words, segs, self.prons)
        if timed is None:
            log.warning("%s: the path's phones do not spell its words: no CTM lines", name)
            return []
        return ctm_lines(name, timed, self.frame_shift)


def transcribe(rec, inputs: List[Tuple[str, str]], emit: Callable[[str, List[str]], None],
               streaming: bool = False, ctm: Optional[Callable[[List[str]], None]] = None,
               partial: Optional[Callable[[str, float, List[str]], None]] = None,
               stored_features: bool = False, min_duration: Optional[float] = None) -> BatchSummary:
    """Transcribe ``inputs``; ``emit(name, words)`` per file, ``ctm(lines)`` with word timings,
    ``partial(name, seconds_fed, words)`` when a streaming hypothesis changes."""
    if streaming and stored_features:
        raise ValueError("stored-feature quantisation needs the whole utterance: not with streaming")
    summary = BatchSummary()
    ctm_writer = CtmWriter(rec) if ctm else None
    kw = {} if min_duration is None else {"min_duration": min_duration}
    chunk_samples = rec.chunk * 480  # 30 ms frames of 16 kHz audio
    summary.chunk_duration = rec.chunk * 0.03 if streaming else 0.0
    for name, source in inputs:
        try:
            audio = load_audio(source, **kw)
        except AudioSkip as e:
            log.warning("skipped %s: %s", name, e)
            summary.skipped.append((name, e.reason, str(e)))
            continue
        for note in audio.notes:
            log.info("%s: %s", name, note)
        t0 = time.perf_counter()
        try:
            if streaming:
                session = rec.stream(name)
                for a in range(0, len(audio.samples), chunk_samples):
                    report = session.accept(audio.samples[a:a + chunk_samples])
                    summary.chunk_seconds.append(report.seconds)
                    if report.changed and partial is not None:
                        partial(name, min(a + chunk_samples, len(audio.samples)) / 16000, report.words)
                result = session.finish()
            else:
                feats = rec.features(audio.samples, stored=stored_features)
                result = rec.decode_scores(rec.scores(feats), name)
        except Exception as e:  # one file's failure is reported and counted, the batch goes on
            log.exception("%s: recognition failed", name)
            summary.skipped.append((name, "failed", f"{source}: recognition failed: {e}"))
            continue
        seconds = time.perf_counter() - t0
        if result.error:
            log.warning("%s: %s", name, result.error)
        summary.done += 1
        summary.audio_seconds += audio.duration
        summary.compute_seconds += seconds
        log.debug("%s: %.2f s of audio in %.3f s (RTF %.3f)", name, audio.duration, seconds,
                  seconds / audio.duration)
        emit(name, result.words)
        if ctm_writer is not None:
            ctm(ctm_writer.lines(name, result))
    log.info(summary.line())
    for name, reason, msg in summary.skipped:
        log.info("skipped: %s", msg)
    return summary
