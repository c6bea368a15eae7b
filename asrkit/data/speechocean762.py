"""speechocean762 (OpenSLR 101): locate or download the corpus, split its speakers into the recipe's sets.

The corpus is a Kaldi data dir at ``<corpus>/train/`` whose ``wav.scp`` paths (FLAC) are relative to the
corpus root, plus ``resource/lexicon.txt``: 125 speakers, 2,500 utterances, about 2.9 h. The recipe's
sets ``train_sup`` / ``train_unsup`` / ``dev`` / ``test`` are carved from it by speaker proportions.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

from asrkit.data.download import download_and_extract
from asrkit.data.validate import DEFAULT_MIN_DURATION

DEFAULT_UNLABELLED = ("train_unsup",)

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]

URL = "https://www.openslr.org/resources/101/speechocean762.tar.gz"
DEFAULT_PROPORTIONS: Dict[str, float] = {"train_sup": 0.40, "train_unsup": 0.35, "dev": 0.10, "test": 0.15}
DEFAULT_SEED = 762
NUM_SPEAKERS = 125
NUM_UTTERANCES = 2500


def data_dir(corpus_dir: PathLike, part: str = "train") -> Path:
    """The Kaldi data dir of a part of the corpus (``train``; the full release also has ``test``)."""
    d = Path(corpus_dir) / part
    if not (d / "wav.scp").is_file():
        raise FileNotFoundError(
            f"{d}/wav.scp not found: {corpus_dir} is not a speechocean762 corpus "
            f"(expected {part}/wav.scp, resource/lexicon.txt, WAVE/)"
        )
    return d


def lexicon_path(corpus_dir: PathLike) -> Path:
    p = Path(corpus_dir) / "resource" / "lexicon.txt"
    if not p.is_file():
        raise FileNotFoundError(f"speechocean762 lexicon not found: {p}")
    return p


def download_speechocean762(dest_dir: PathLike, url: str = URL, md5: Optional[str] = None) -> Path:
    """Download and extract the corpus into ``dest_dir`` (skipped when done); return the corpus root."""
    download_and_extract(url, dest_dir, md5=md5)
    root = Path(dest_dir) / "speechocean762"
    data_dir(root)
    return root


def prepare_speechocean762(
    corpus_dir: PathLike,
    out_dir: PathLike,
    *,
    proportions: Optional[Mapping[str, float]] = None,
    speaker_lists: Optional[Mapping[str, Sequence[str]]] = None,
    seed: int = DEFAULT_SEED,
    unlabelled_sets: Sequence[str] = DEFAULT_UNLABELLED,
    kaldi_view_root: Optional[PathLike] = None,
    on_error: str = "fail",
    min_duration: float = DEFAULT_MIN_DURATION,
    sample_rate: int = 16000,
    force: bool = False,
) -> Dict[str, Dict[str, Path]]:
    """Write the manifests of ``train_sup``, ``train_unsup`` (no text; oracle manifest), ``dev`` and
    ``test`` (speaker proportions :data:`DEFAULT_PROPORTIONS`, or explicit ``speaker_lists``), seeded."""
    from asrkit.data.split import prepare_split  # lhotse: imported only when needed

    if speaker_lists is None and proportions is None:
        proportions = DEFAULT_PROPORTIONS
    return prepare_split(
        data_dir(corpus_dir), out_dir, audio_root=corpus_dir, proportions=proportions,
        speaker_lists=speaker_lists, seed=seed, unlabelled_sets=unlabelled_sets, on_error=on_error,
        min_duration=min_duration, sample_rate=sample_rate, kaldi_view_root=kaldi_view_root, force=force,
    )
