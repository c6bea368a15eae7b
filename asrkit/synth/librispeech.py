"""A small synthetic corpus in LibriSpeech's directory layout, for testing the LibriSpeech recipe.

A synthetic corpus (:func:`asrkit.synth.corpus.make_corpus`: espeak-ng speech in 16 kHz FLAC) is made
first, then its utterances are laid out exactly as OpenSLR 12 ships LibriSpeech::

    <root>/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac
    <root>/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>.trans.txt   ("<utt-id> WORDS ..." lines)
    <root>/librispeech-lm-norm.txt.gz                                         (LM text, as OpenSLR 11)

Speakers and chapters are numbers, transcripts upper case, as in the real corpus. The synthetic splits
map onto LibriSpeech's subsets speaker by speaker (every subset keeps its own speakers, as in
LibriSpeech): ``train_sup`` → train-clean-100, ``train_unsup`` → train-clean-360 + train-other-500,
``dev`` → dev-clean + dev-other, ``test_clean`` → test-clean, ``test_noisy`` → test-other.
"""
from __future__ import annotations

import gzip
import json
import logging
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from asrkit.synth.corpus import SynthConfig, make_corpus
from asrkit.utils.atomic import atomic_path, atomic_write_text, is_done, mark_done

log = logging.getLogger(__name__)

#: synthetic split → the LibriSpeech subsets its speakers are dealt to (round-robin by speaker).
SPLIT_TO_SUBSETS: Dict[str, Tuple[str, ...]] = {
    "train_sup": ("train-clean-100",),
    "train_unsup": ("train-clean-360", "train-other-500"),
    "dev": ("dev-clean", "dev-other"),
    "test_clean": ("test-clean",),
    "test_noisy": ("test-other",),
}
CHAPTERS_PER_SPEAKER = 2  # two trans.txt files per speaker, as a reader has several chapters


def tiny_config(seed: int = 0) -> SynthConfig:
    """About 15-30 s of speech per LibriSpeech subset: the recipe's stage wiring, not its accuracy."""
    minutes = {"train_sup": 0.5, "train_unsup": 0.5, "dev": 0.4, "test_clean": 0.2, "test_noisy": 0.2}
    speakers = {"train_sup": 2, "train_unsup": 2, "dev": 2, "test_clean": 1, "test_noisy": 1}
    return SynthConfig.tiny(seed=seed, hours={s: m / 60 for s, m in minutes.items()}, speakers=speakers)


def _read_table(path: Path) -> Dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(" ")
        if key:
            out[key] = value.strip()
    return out


def librispeech_layout(synth_root: Path, out_root: Path) -> Dict[str, Dict[str, int]]:
    """Lay the synthetic corpus at ``synth_root`` out as ``out_root/LibriSpeech`` (atomically, once).

    Returns per subset the numbers of speakers, chapters and utterances."""
    synth_root, out_root = Path(synth_root), Path(out_root)
    target = out_root / "LibriSpeech"
    summary_path = target / "tiny.json"
    if is_done(target) and summary_path.exists():
        log.info("%s is complete: nothing to do", target)
        return json.loads(summary_path.read_text())
    summary: Dict[str, Dict[str, int]] = {}
    next_spk = 1001
    with atomic_path(target) as tmp:
        tmp.mkdir()
        for split, subsets in SPLIT_TO_SUBSETS.items():
            data = synth_root / "data" / split
            wav = _read_table(data / "wav.scp")
            spk_of = _read_table(data / "utt2spk")
            # train_unsup has no text of its own in the synthetic corpus: the oracle holds it
            text_file = data / "text" if (data / "text").exists() else synth_root / "oracle" / split / "text"
            text = _read_table(text_file)
            speakers = sorted(set(spk_of.values()))
            if len(speakers) < len(subsets):
                raise ValueError(f"{data}: {len(speakers)} speaker(s) cannot fill the subsets {', '.join(subsets)}")
            for k, spk in enumerate(speakers):
                subset = subsets[k % len(subsets)]
                num = next_spk
                next_spk += 1
                utts = sorted(u for u, s in spk_of.items() if s == spk)
                chapters: Dict[int, List[str]] = {}
                for i, utt in enumerate(utts):
                    chapters.setdefault(num * 10 + i % CHAPTERS_PER_SPEAKER, []).append(utt)
                stats = summary.setdefault(subset, {"speakers": 0, "chapters": 0, "utterances": 0})
                stats["speakers"] += 1
                for chapter, members in sorted(chapters.items()):
                    cdir = tmp / subset / str(num) / str(chapter)
                    cdir.mkdir(parents=True)
                    lines = []
                    for j, utt in enumerate(members):
                        if utt not in text:
                            raise ValueError(f"{text_file}: no transcript for utterance {utt}")
                        uid = f"{num}-{chapter}-{j:04d}"
                        shutil.copyfile(synth_root / wav[utt], cdir / f"{uid}.flac")  # already 16 kHz FLAC
                        lines.append(f"{uid} {text[utt].upper()}\n")
                    (cdir / f"{num}-{chapter}.trans.txt").write_text("".join(lines), encoding="utf-8")
                    stats["chapters"] += 1
                    stats["utterances"] += len(members)
        (tmp / "tiny.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    with atomic_path(out_root / "librispeech-lm-norm.txt.gz") as tmp_lm:
        with gzip.open(tmp_lm, "wt", encoding="utf-8") as f:
            f.write((synth_root / "lm_text.txt").read_text(encoding="utf-8"))
    mark_done(target)  # last: the LM text is there too
    return summary


def make_tiny_librispeech(root, seed: int = 0, nj: int = 1, config: Optional[SynthConfig] = None,
                          progress: bool = True) -> Dict[str, Dict[str, int]]:
    """Synthesise a tiny corpus under ``root/.synth`` and lay it out as ``root/LibriSpeech``."""
    root = Path(root)
    cfg = config or tiny_config(seed)
    make_corpus(root / ".synth", cfg, nj=nj, progress=progress)
    summary = librispeech_layout(root / ".synth", root)
    atomic_write_text(root / "tiny.json", json.dumps({"seed": seed, "subsets": summary}, indent=1) + "\n")
    log.info("tiny LibriSpeech at %s: %s", root / "LibriSpeech",
             ", ".join(f"{s} {v['utterances']} utt" for s, v in sorted(summary.items())))
    return summary


def subsets() -> Sequence[str]:
    return tuple(s for subs in SPLIT_TO_SUBSETS.values() for s in subs)
