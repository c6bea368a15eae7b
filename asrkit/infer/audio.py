"""Audio files for transcription: read, checked, downmixed and resampled to the model's 16 kHz mono.

:func:`load_audio` returns the samples with the notes of what was done to them (downmix, resampling), or
raises :class:`AudioSkip` with one of the validation reasons of :mod:`asrkit.data.validate` (missing
file, not audio, truncated, failing command, empty, too short for one 30 ms frame) and the file named:
a batch counts the skip and goes on. ``wav.scp`` values that are commands (``... |``) are run and their
output read, as the recipes' data preparation does.
"""
from __future__ import annotations

import io
import os
import subprocess
from dataclasses import dataclass, field
from typing import List

import numpy as np
import soundfile as sf

from asrkit.data.manifests import AudioInfo, truncation
from asrkit.data.kaldi_dir import is_pipe, pipe_command
from asrkit.data.validate import REASONS
from asrkit.features.stack import SAMPLING_RATE, STACKED_FRAME_SHIFT

MIN_DURATION = STACKED_FRAME_SHIFT  # one 30 ms frame: the shortest input the network can score


class AudioSkip(Exception):
    """An input that cannot be transcribed; ``reason`` is a key of asrkit.data.validate.REASONS."""

    def __init__(self, source: str, reason: str, detail: str = ""):
        self.source, self.reason, self.detail = source, reason, detail
        super().__init__(f"{source}: {REASONS.get(reason, reason)} [{reason}]" + (f": {detail}" if detail else ""))


@dataclass
class LoadedAudio:
    samples: np.ndarray  # float32, mono, SAMPLING_RATE
    source: str
    original_rate: int
    channels: int
    notes: List[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLING_RATE


def _read(source: str):
    """(samples (n, channels) float32, rate) of a file or a ``cmd |`` value; AudioSkip when unreadable."""
    if is_pipe(source):
        cmd = pipe_command(source)
        try:
            proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        except subprocess.TimeoutExpired:
            raise AudioSkip(source, "unreadable_audio", f"command timed out: {cmd}") from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:] or [""]
            raise AudioSkip(source, "unreadable_audio", f"command exited with {proc.returncode}: {err[0]}")
        if not proc.stdout:
            raise AudioSkip(source, "empty_audio", "the command wrote nothing")
        data = io.BytesIO(proc.stdout)
    else:
        if not os.path.isfile(source):
            raise AudioSkip(source, "missing_audio", "no such file")
        try:
            info = sf.info(source)
        except Exception as e:  # soundfile raises several types; all mean "not (readable) audio"
            raise AudioSkip(source, "unreadable_audio", str(e).strip()) from None
        problem = truncation(source, AudioInfo(int(info.samplerate), int(info.frames), int(info.channels)))
        if problem:  # libsndfile would read the part that is there, silently (the check of stage 1)
            raise AudioSkip(source, "truncated", problem)
        data = source
    try:
        samples, rate = sf.read(data, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types; all mean "not (readable) audio"
        raise AudioSkip(source, "unreadable_audio", str(e).strip()) from None
    return samples, int(rate)


def resample(samples: np.ndarray, rate: int, target: int = SAMPLING_RATE) -> np.ndarray:
    """lhotse's sinc resampler (pure torch: what lhotse uses without torchaudio or scipy)."""
    import torch
    from lhotse.augmentation.resample import Resample

    return Resample(rate, target)(torch.from_numpy(np.ascontiguousarray(samples))[None])[0].numpy()


def load_audio(source: str, min_duration: float = MIN_DURATION) -> LoadedAudio:
    """16 kHz mono float32 samples of ``source`` (a file path or a ``cmd |`` wav.scp value)."""
    samples, rate = _read(source)
    n, channels = samples.shape
    if n == 0:
        raise AudioSkip(source, "empty_audio", "0 samples")
    out = LoadedAudio(samples[:, 0], source, rate, channels)
    if channels > 1:
        out.samples = samples.mean(axis=1, dtype=np.float32)
        out.notes.append(f"{channels} channels averaged to mono")
    if rate != SAMPLING_RATE:
        out.samples = resample(out.samples, rate)
        out.notes.append(f"resampled from {rate} Hz to {SAMPLING_RATE} Hz")
    out.samples = np.ascontiguousarray(out.samples, dtype=np.float32)
    if out.duration < min_duration:
        raise AudioSkip(source, "too_short", f"{out.duration:.3f} s < {min_duration:.3f} s (one 30 ms frame)")
    return out
