"""Tiny corpora for the stage 1 tests: a few utterances of noise in the synthetic corpus's layout, made in
a second.

``write_toy_corpus(root, {"train_sup": ["spk1", "spk2"], ...})`` writes
``root/audio/<set>/<spk>/<utt>.flac`` (16 kHz) and ``root/data/<set>/`` (wav.scp relative to ``root``,
text, utt2spk, spk2utt, utt2cond, phones.ctm); unlabelled sets get no ``text`` but
``root/oracle/<set>/text``. With ``segments=True`` each speaker's utterances share one recording.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np
import soundfile as sf

from asrkit.data.kaldi_dir import format_time

PathLike = Union[str, os.PathLike]

WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero"]
PHONES = {"one": "w ah n", "two": "t uw", "three": "th r iy", "four": "f ao r", "five": "f ay v",
          "six": "s ih k s", "seven": "s eh v ah n", "eight": "ey t", "nine": "n ay n", "zero": "z ih r ow"}
CONDITIONS = ["clean", "noisy", "reverb", "noisy_reverb"]


def write_toy_audio(path: PathLike, num_samples: int, sample_rate: int = 16000, seed: int = 0) -> Path:
    """Low-level noise, int16, format from the suffix (``.flac``, ``.wav``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(num_samples) * 1000).astype(np.int16)
    sf.write(str(path), x, sample_rate, subtype="PCM_16")
    return path


def write_toy_corpus(
    root: PathLike,
    sets: Mapping[str, Sequence[str]],
    utts_per_speaker: int = 2,
    unlabelled: Sequence[str] = ("train_unsup",),
    segments: bool = False,
    with_cond: bool = True,
    with_ctm: bool = True,
    sample_rate: int = 16000,
    audio_ext: str = "flac",
    durations: Optional[Sequence[float]] = None,
) -> Path:
    """Write a toy corpus; return ``root``. Utterance ids are ``<spk>-<n>`` (so they sort by speaker)."""
    root = Path(root)
    seed = 0
    for set_name, speakers in sets.items():
        d = root / "data" / set_name
        d.mkdir(parents=True, exist_ok=True)
        wav, text, utt2spk, cond, ctm, segs = [], [], [], [], [], []
        for s_i, spk in enumerate(speakers):
            utt_lens = []
            for u in range(utts_per_speaker):
                dur = durations[u % len(durations)] if durations else 0.5 + 0.1 * ((s_i + u) % 4)
                utt_lens.append(dur)
            rec_offsets = np.concatenate([[0.0], np.cumsum(utt_lens)])
            if segments:
                rec = f"{spk}-rec"
                rel = f"audio/{set_name}/{spk}/{rec}.{audio_ext}"
                seed += 1
                write_toy_audio(root / rel, int(round(rec_offsets[-1] * sample_rate)), sample_rate, seed)
                wav.append(f"{rec} {rel}")
            for u, dur in enumerate(utt_lens):
                utt = f"{spk}-{u:03d}"
                words = [WORDS[(s_i * 7 + u * 3 + k) % len(WORDS)] for k in range(1 + (u % 3))]
                if segments:
                    start = float(rec_offsets[u])
                    segs.append(f"{utt} {spk}-rec {format_time(start)} {format_time(start + dur)}")
                else:
                    rel = f"audio/{set_name}/{spk}/{utt}.{audio_ext}"
                    seed += 1
                    write_toy_audio(root / rel, int(round(dur * sample_rate)), sample_rate, seed)
                    wav.append(f"{utt} {rel}")
                text.append(f"{utt} {' '.join(w.upper() for w in words)}")
                utt2spk.append(f"{utt} {spk}")
                cond.append(f"{utt} {CONDITIONS[(s_i + u) % len(CONDITIONS)]}")
                phones = [p for w in words for p in PHONES[w].split()]
                step = round(dur / (len(phones) + 2), 2)
                t = step
                for p in phones:
                    ctm.append(f"{utt} 1 {format_time(t)} {format_time(step)} {p}")
                    t = round(t + step, 2)
        files: Dict[str, Sequence[str]] = {"wav.scp": wav, "utt2spk": utt2spk}
        if set_name in unlabelled:
            (root / "oracle" / set_name).mkdir(parents=True, exist_ok=True)
            (root / "oracle" / set_name / "text").write_text("".join(t + "\n" for t in sorted(text)))
        else:
            files["text"] = text
        if segments:
            files["segments"] = segs
        if with_cond:
            files["utt2cond"] = cond
        if with_ctm:
            files["phones.ctm"] = ctm
        spk2utt: Dict[str, list] = {}
        for line in utt2spk:
            u, s = line.split()
            spk2utt.setdefault(s, []).append(u)
        files["spk2utt"] = [f"{s} {' '.join(sorted(us))}" for s, us in sorted(spk2utt.items())]
        for name, lines in files.items():
            body = sorted(lines, key=lambda x: x.split()[0]) if name == "phones.ctm" else sorted(lines)
            (d / name).write_text("".join(line + "\n" for line in body), encoding="utf-8")
    return root
