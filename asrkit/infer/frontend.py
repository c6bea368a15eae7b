"""Network inputs computed incrementally from audio as it arrives: fbank, CMVN, stacking (the frame rule).

:class:`OnlineFbank` gives the same 64-bin log-mel frames as :func:`asrkit.features.extract_features`
(lhotse's ``Fbank``, 25 ms windows every 10 ms, ``snip_edges=False``) however the audio is cut into
chunks: with ``snip_edges=False`` frame ``i`` covers samples ``[160 i - 120, 160 i + 280)`` of the
signal padded by mirroring its first 120 samples at the start and its last ones at the end, so a frame
is computed as soon as its window has arrived, except the last one or two, which wait for
:meth:`OnlineFbank.finish` (they need the end's mirror). Each frame's arithmetic depends only on its own
window, so the frames equal the whole-signal extraction bit for bit (tests/infer/test_frontend.py checks
it for several chunkings).

:class:`OnlineFeatures` normalises those frames with the training CMVN and stacks them by three
(:func:`asrkit.features.stack_frames`): a 30 ms frame is released once its three 10 ms frames exist; the
last one is padded by repeating the last 10 ms frame at :meth:`OnlineFeatures.finish`, as offline.
"""
from __future__ import annotations

import warnings
from typing import List, Optional

import numpy as np

from asrkit.features.cmvn import STD_FLOOR, CmvnStats, check_norm, utterance_cmvn
from asrkit.features.extract import NUM_MEL_BINS, extract_features, make_extractor
from asrkit.features.stack import (FRAME_LENGTH, FRAME_SHIFT, SAMPLING_RATE, STACK, num_frames_from_samples,
                                   stack_frames)

HOP = round(FRAME_SHIFT * SAMPLING_RATE)  # 160 samples
WIN = round(FRAME_LENGTH * SAMPLING_RATE)  # 400 samples
LEFT_PAD = (WIN - HOP) // 2  # 120: lhotse's (and Kaldi's) mirror at the start with snip_edges=False
# Frames are extracted in blocks of BLOCK, aligned on the utterance's start, however the audio arrives:
# torch's matrix products round a frame differently in batches of different sizes (1-3 rows differed
# from a long batch in ~1e-7 in our runs), so equal blocks are what makes streaming equal offline.
BLOCK = 12  # 10 ms frames: 120 ms, under any network chunk worth streaming with


def _window_extractor(num_mel_bins: int, sampling_rate: int):
    """lhotse's Fbank over whole windows only (snip_edges=True): the caller supplies the padding."""
    from lhotse import Fbank, FbankConfig

    with warnings.catch_warnings():  # lhotse warns that snip_edges=True breaks its duration arithmetic:
        warnings.simplefilter("ignore")  # not used here, frames are counted by the frame rule
        return Fbank(FbankConfig(num_filters=num_mel_bins, sampling_rate=sampling_rate, frame_length=FRAME_LENGTH,
                                 frame_shift=FRAME_SHIFT, snip_edges=True, dither=0.0))


class OnlineFbank:
    """``accept(samples) -> new frames``; ``finish() -> the last frames``. 16 kHz float32 mono input."""

    def __init__(self, num_mel_bins: int = NUM_MEL_BINS, sampling_rate: int = SAMPLING_RATE):
        if sampling_rate != SAMPLING_RATE:
            raise ValueError(f"the frame rule is defined at {SAMPLING_RATE} Hz; resample the audio first")
        self.num_mel_bins = num_mel_bins
        self.sampling_rate = sampling_rate
        self._extractor = _window_extractor(num_mel_bins, sampling_rate)
        self._samples: List[np.ndarray] = []
        self._buffer = np.zeros(0, np.float32)  # the signal from sample self._start on
        self._start = 0  # index in the signal of self._buffer[0]
        self.num_samples = 0
        self.num_frames = 0  # frames released so far
        self.finished = False

    def _padded_from(self, first: int) -> np.ndarray:
        """The padded signal from frame ``first``'s window start to the last sample received."""
        a = first * HOP - LEFT_PAD
        if a >= 0:
            return self._buffer[a - self._start:]
        if self._start != 0:
            raise RuntimeError("internal: the start mirror is needed after it was dropped")
        # padded sample j < 0 is x[-j - 1] (lhotse flips the first 120 samples)
        return np.concatenate([self._buffer[:LEFT_PAD][::-1][LEFT_PAD + a:], self._buffer])

    def _blocks(self, last: int, padded: np.ndarray) -> List[np.ndarray]:
        """Frames [self.num_frames, last) of ``padded`` (which starts at the first one's window), in
        blocks of BLOCK frames (the last one shorter), and advance self.num_frames."""
        out, offset = [], self.num_frames
        while self.num_frames < last:
            first, end = self.num_frames, min(self.num_frames + BLOCK, last)
            a = (first - offset) * HOP
            # a fresh copy: the same alignment for every block, whatever the slice it came from
            seg = np.array(padded[a:a + (end - first - 1) * HOP + WIN], dtype=np.float32)
            feats = np.asarray(self._extractor.extract(seg, self.sampling_rate), dtype=np.float32)
            if feats.shape[0] != end - first:
                raise RuntimeError(f"internal: {feats.shape[0]} frames for {end - first} windows")
            out.append(feats)
            self.num_frames = end
        return out

    def _stack(self, blocks: List[np.ndarray]) -> np.ndarray:
        return np.concatenate(blocks) if blocks else np.zeros((0, self.num_mel_bins), np.float32)

    def accept(self, samples) -> np.ndarray:
        """Append samples; returns the (k, 64) frames of the blocks whose windows are now complete."""
        if self.finished:
            raise RuntimeError("accept() after finish()")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._buffer = np.concatenate([self._buffer, x])
        self.num_samples += len(x)
        if self.num_samples < LEFT_PAD:  # the start mirror is not complete yet
            return self._stack([])
        # frame i is complete when its window's end, 160 i + 280, has arrived
        ready = max(0, (self.num_samples - (WIN - LEFT_PAD)) // HOP + 1)
        last = self.num_frames + (ready - self.num_frames) // BLOCK * BLOCK
        if last <= self.num_frames:
            return self._stack([])
        blocks = self._blocks(last, self._padded_from(self.num_frames))
        self._trim()
        return self._stack(blocks)

    def _trim(self) -> None:
        """Forget the samples that no later frame needs (frame 0 alone needs the start mirror)."""
        keep_from = max(self.num_frames * HOP - LEFT_PAD, 0)
        if self.num_frames > 0 and keep_from > self._start:
            self._buffer = self._buffer[keep_from - self._start:]
            self._start = keep_from

    def finish(self) -> np.ndarray:
        """The frames left, the last ones' windows mirrored past the end as lhotse does."""
        if self.finished:
            return self._stack([])
        self.finished = True
        n = num_frames_from_samples(self.num_samples, self.sampling_rate)
        if n <= self.num_frames:
            return self._stack([])
        if self.num_samples < WIN:
            raise ValueError(f"{self.num_samples} samples: shorter than one {WIN}-sample window")
        right = (n - 1) * HOP + WIN - LEFT_PAD - self.num_samples  # lhotse's right padding (<= 200 samples)
        tail = self._buffer[len(self._buffer) - right:][::-1] if right > 0 else self._buffer[:0]
        return self._stack(self._blocks(n, np.concatenate([self._padded_from(self.num_frames), tail])))


class OnlineFeatures:
    """Audio chunks in, (T, 192) normalised stacked 30 ms frames out, equal to the offline features."""

    def __init__(self, cmvn: Optional[CmvnStats], num_mel_bins: int = NUM_MEL_BINS, stack: int = STACK):
        self.fbank = OnlineFbank(num_mel_bins)
        self.stack = stack
        self._pending = np.zeros((0, num_mel_bins), np.float32)  # normalised 10 ms frames not yet stacked
        self._mean = self._inv_std = None
        if cmvn is not None:
            if cmvn.dim != num_mel_bins:
                raise ValueError(f"CMVN of dim {cmvn.dim} for {num_mel_bins}-bin fbank")
            # the same float32 arithmetic as asrkit.features.FeatureReader
            self._mean = cmvn.mean.astype(np.float32)
            self._inv_std = (1.0 / cmvn.std).astype(np.float32)

    def _normalise(self, feats: np.ndarray) -> np.ndarray:
        return feats if self._mean is None else (feats - self._mean) * self._inv_std

    def accept(self, samples) -> np.ndarray:
        self._pending = np.concatenate([self._pending, self._normalise(self.fbank.accept(samples))])
        k = (len(self._pending) // self.stack) * self.stack
        out, self._pending = self._pending[:k], self._pending[k:]
        return stack_frames(out, self.stack)

    def finish(self) -> np.ndarray:
        rest = np.concatenate([self._pending, self._normalise(self.fbank.finish())])
        self._pending = rest[:0]
        return stack_frames(rest, self.stack)


def offline_features(samples: np.ndarray, cmvn: Optional[CmvnStats], stored: bool = False,
                     norm: str = "global") -> np.ndarray:
    """The whole signal at once through the streaming path (what a non-streaming transcription uses);
    ``stored``: with the fbank quantised as the recipes store it (:func:`stored_like`). ``norm``: the
    network's normalisation; ``speaker`` and ``utterance`` use the signal's own statistics (a transcribed
    file is its own speaker), with the arithmetic of :class:`asrkit.features.reader.FeatureReader`."""
    if check_norm(norm) != "global":
        fbank = stored_like(extract_features(samples, make_extractor("fbank"))) if stored else offline_fbank(samples)
        if len(fbank) == 0:
            return stack_frames(fbank, STACK)
        st = utterance_cmvn(fbank, cmvn.std_floor if cmvn is not None else STD_FLOOR)
        return stack_frames((fbank - st.mean.astype(np.float32)) * (1.0 / st.std).astype(np.float32), STACK)
    f = OnlineFeatures(cmvn)
    if stored:  # stage 2's very computation: one extractor call over the utterance, then lilcom
        fbank = stored_like(extract_features(samples, make_extractor("fbank")))
        return stack_frames(f._normalise(fbank), f.stack)
    return np.concatenate([f.accept(samples), f.finish()])


def stored_like(fbank: np.ndarray, tick_power: int = -5) -> np.ndarray:
    """``fbank`` as the recipes store it and read it back: lilcom-compressed in lhotse's chunks of 500
    frames at 2^-5 precision (LilcomChunkyWriter, asrkit.features.extract). A transcription with it
    reproduces the recipe's decoding of its own sets; it needs the whole utterance (offline only)."""
    import lilcom
    from lhotse.features.compression import lilcom_compress_chunked
    from lhotse.features.io import CHUNKY_FORMAT_CHUNK_SIZE

    if len(fbank) == 0:
        return fbank
    chunks = lilcom_compress_chunked(np.array(fbank, np.float32), tick_power=tick_power,
                                     chunk_size=CHUNKY_FORMAT_CHUNK_SIZE)
    return np.concatenate([lilcom.decompress(c) for c in chunks]).astype(np.float32)


def offline_fbank(samples: np.ndarray) -> np.ndarray:
    f = OnlineFbank()
    return np.concatenate([f.accept(samples), f.finish()])
