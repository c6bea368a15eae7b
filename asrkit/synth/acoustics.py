"""Signal processing of the synthetic corpus: resampling, coloured noise, babble, room impulse responses.

Everything is numpy and deterministic given a ``numpy.random.Generator``.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import List, Sequence, Tuple

import numpy as np


# -- resampling ---------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _polyphase_bank(up: int, down: int, taps_per_phase: int) -> np.ndarray:
    """Kaiser-windowed sinc low-pass (cut-off at the lower Nyquist) split into ``up`` phases.

    Row p holds the coefficients h[p + up·j], j = 0..taps-1, of the prototype of length up·taps
    centred at up·taps/2, scaled by ``up`` so the pass band has unit gain.
    """
    length = up * taps_per_phase
    centre = length / 2.0
    cutoff = 0.5 / max(up, down) * 0.94  # in cycles per upsampled sample, a little below Nyquist
    n = np.arange(length, dtype=np.float64) - centre
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(length, 8.0) * up
    return h.reshape(taps_per_phase, up).T.copy().astype(np.float32)  # [phase, tap]


@lru_cache(maxsize=8)
def _block_weights(up: int, down: int, taps_per_phase: int) -> Tuple[np.ndarray, int]:
    """The polyphase filter as one matrix: ``up`` consecutive outputs from a window of the input.

    Output m = up·q + r sits at upsampled position m·down + up·half (half = taps/2 centres the filter),
    i.e. on input base b = q·down + b_r with phase p_r; it is sum_j x[b - j]·bank[p_r, j]. With
    lo = min_r b_r - (taps - 1), output up·q + r = sum_k x[q·down + lo + k]·W[r, k].
    """
    bank = _polyphase_bank(up, down, taps_per_phase)
    half = taps_per_phase // 2
    r = np.arange(up, dtype=np.int64)
    pos = r * down + up * half
    b = pos // up
    ph = pos - b * up
    lo = int(b.min()) - (taps_per_phase - 1)
    width = int(b.max() - b.min()) + taps_per_phase
    w = np.zeros((up, width), np.float32)
    for i in range(up):
        for j in range(taps_per_phase):
            w[i, int(b[i]) - j - lo] = bank[ph[i], j]
    return w, lo


def resample_poly(x: np.ndarray, up: int, down: int, taps_per_phase: int = 24) -> np.ndarray:
    """Resample ``x`` by ``up/down`` with a polyphase FIR filter; the output has ceil(len·up/down) samples.

    Output sample m sits at upsampled position m·down; the sample aligned with input index 0 is output 0
    (zero delay: the filter is centred), so time t in seconds maps to the same t after resampling.
    Computed block-wise as one matrix product (a strided view of the input times the filter matrix).
    """
    x = np.asarray(x, dtype=np.float32)
    g = math.gcd(up, down)
    up, down = up // g, down // g
    w, lo = _block_weights(up, down, taps_per_phase)
    n_out = int(math.ceil(len(x) * up / down))
    if n_out == 0:
        return np.zeros(0, np.float32)
    q = int(math.ceil(n_out / up))
    width = w.shape[1]
    pad_left = max(0, -lo)
    need = (q - 1) * down + lo + pad_left + width
    xp = np.zeros(max(need, pad_left + len(x)), np.float32)
    xp[pad_left: pad_left + len(x)] = x
    frames = np.lib.stride_tricks.as_strided(xp[lo + pad_left:], shape=(q, width),
                                             strides=(down * xp.strides[0], xp.strides[0]), writeable=False)
    return (frames @ w.T).reshape(-1)[:n_out]


# -- noise --------------------------------------------------------------------------------------
def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Gaussian noise with a 1/f^exponent power spectrum (0 white, 1 pink, 2 brown), unit RMS."""
    if n <= 0:
        return np.zeros(0, np.float32)
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.arange(n // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-exponent / 2.0)
    spec[0] = 0.0
    y = np.fft.irfft(spec, n).astype(np.float32)
    return y / max(float(np.sqrt(np.mean(y ** 2))), 1e-9)


def babble(rng: np.random.Generator, n: int, bank: Sequence[np.ndarray], num_talkers: Tuple[int, int] = (3, 7)) -> np.ndarray:
    """Sum of ``num_talkers`` randomly chosen and shifted clips of the babble bank, looped to n samples."""
    out = np.zeros(n, np.float32)
    if not bank or n <= 0:
        return out
    k = int(rng.integers(num_talkers[0], num_talkers[1] + 1))
    for _ in range(k):
        clip = bank[int(rng.integers(len(bank)))]
        if len(clip) == 0:
            continue
        reps = int(math.ceil((n + len(clip)) / len(clip)))
        looped = np.tile(clip, reps)
        off = int(rng.integers(len(clip)))
        seg = looped[off: off + n]
        out += seg / max(float(np.sqrt(np.mean(clip ** 2))), 1e-9) * float(rng.uniform(0.5, 1.0))
    return out / max(float(np.sqrt(np.mean(out ** 2))), 1e-9)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that 10·log10(P_speech / P_noise) = snr_db (powers over the signal)."""
    ps = float(np.mean(speech.astype(np.float64) ** 2))
    pn = float(np.mean(noise.astype(np.float64) ** 2))
    if ps <= 0 or pn <= 0:
        return speech.copy()
    scale = math.sqrt(ps / (pn * 10 ** (snr_db / 10.0)))
    return speech + noise * np.float32(scale)


# -- reverberation ------------------------------------------------------------------------------
def synthetic_rir(rng: np.random.Generator, rt60: float, sample_rate: int = 16000,
                  direct_to_reverb_db: float = 0.0) -> np.ndarray:
    """An impulse response: a unit direct path at lag 0 then exponentially decaying Gaussian noise.

    The tail's amplitude falls by 60 dB in ``rt60`` seconds (exp(-6.9·t/rt60)), starts after a 2-5 ms
    gap (early reflections), and its energy relative to the direct path is set by ``direct_to_reverb_db``.
    """
    n = max(2, int(rt60 * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)
    gap = int(rng.uniform(0.002, 0.005) * sample_rate)
    tail[:gap] = 0.0
    tail[gap:] *= np.linspace(0.3, 1.0, n - gap) ** 0 if n > gap else 1.0
    e_tail = float(np.sum(tail ** 2))
    if e_tail > 0:
        tail *= math.sqrt(10 ** (-direct_to_reverb_db / 10.0) / e_tail)
    tail[0] = 1.0
    return tail.astype(np.float32)


def fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Linear convolution truncated to len(x) (the direct path at lag 0 keeps every time stamp)."""
    n = len(x) + len(h) - 1
    nfft = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(h, nfft), nfft)[: len(x)]
    return y.astype(np.float32)


def reverberate(rng: np.random.Generator, x: np.ndarray, rt60_range: Tuple[float, float],
                drr_range: Tuple[float, float] = (-6.0, 6.0), sample_rate: int = 16000) -> Tuple[np.ndarray, float]:
    """Convolve with a random synthetic RIR; keeps the RMS of the input. Returns (signal, rt60)."""
    rt60 = float(rng.uniform(*rt60_range))
    h = synthetic_rir(rng, rt60, sample_rate, float(rng.uniform(*drr_range)))
    y = fft_convolve(x, h)
    rx, ry = float(np.sqrt(np.mean(x ** 2))), float(np.sqrt(np.mean(y ** 2)))
    if ry > 0:
        y *= np.float32(rx / ry)
    return y, rt60


def to_int16(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale a float signal (int16 units) so its peak is at most ``peak`` of full scale, round to int16."""
    m = float(np.max(np.abs(x))) if len(x) else 0.0
    limit = peak * 32767.0
    if m > limit:
        x = x * np.float32(limit / m)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)
