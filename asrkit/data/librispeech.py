"""LibriSpeech (OpenSLR 12): resumable download of its subsets, and Kaldi data dirs through lhotse's recipe.

The recipe's sets and the subsets they hold:

    train_sup    train-clean-100                      labelled
    train_unsup  train-clean-360 + train-other-500    unlabelled: transcripts only in the oracle text
    dev_clean, dev_other, test_clean, test_other      labelled evaluation sets

:func:`librispeech_kaldi_dirs` parses the corpus with :func:`lhotse.recipes.prepare_librispeech` and
writes one Kaldi data dir per set (``wav.scp`` paths relative to the corpus root, ``utt2spk``, ``text``;
``train_unsup`` without ``text``, its transcripts in ``<out>/oracle/train_unsup/text``). Stage 1 then
validates them like any other corpus (:func:`asrkit.data.manifests.prepare_manifests`).
lhotse drops an utterance whose FLAC is missing with only a warning; here each is counted, named in
``<out>/prepare_report.txt`` and, unless ``on_error="skip"``, an error.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from asrkit.data.download import download_url, extract_tar
from asrkit.utils.atomic import atomic_write_text, is_done, mark_done

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]

BASE_URL = "https://www.openslr.org/resources/12"
SETS: Dict[str, Tuple[str, ...]] = {
    "train_sup": ("train-clean-100",),
    "train_unsup": ("train-clean-360", "train-other-500"),
    "dev_clean": ("dev-clean",),
    "dev_other": ("dev-other",),
    "test_clean": ("test-clean",),
    "test_other": ("test-other",),
}
UNLABELLED = ("train_unsup",)
# sha256 of OpenSLR 12's archives (the values torchaudio's LIBRISPEECH dataset checks)
SHA256: Dict[str, str] = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}
SUBSETS: Tuple[str, ...] = tuple(p for parts in SETS.values() for p in parts)


class LibriSpeechError(ValueError):
    """A corpus that cannot be used; the message names the folder or file."""


def subsets_of(sets: Sequence[str]) -> List[str]:
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        raise LibriSpeechError(f"unknown LibriSpeech set(s) {unknown}; known: {', '.join(SETS)}")
    return [p for s in sets for p in SETS[s]]


def download_librispeech(dest: PathLike, subsets: Sequence[str] = SUBSETS, base_url: str = BASE_URL,
                         md5: Optional[Dict[str, str]] = None, keep_archives: bool = True,
                         sha256: Optional[Dict[str, str]] = SHA256) -> Path:
    """Download and extract ``subsets`` into ``dest/LibriSpeech/<subset>``; returns ``dest/LibriSpeech``.

    Each archive (``<base_url>/<subset>.tar.gz``) is downloaded with resume (:func:`download_url`),
    extracted into a staging folder of its own and its ``LibriSpeech/<subset>`` moved into place with a
    done marker: every archive's top folder is ``LibriSpeech/``, so extracting them in one place would
    replace one subset by the next. A finished subset is skipped; ``base_url`` may be ``file://``.
    Each archive is checked against ``sha256`` (default: OpenSLR's archives, :data:`SHA256`; ``{}`` or
    None checks nothing, for archives of one's own) and ``md5`` where they name it.
    """
    dest = Path(dest)
    root = dest / "LibriSpeech"
    for subset in subsets:
        if subset not in SUBSETS:
            raise LibriSpeechError(f"unknown LibriSpeech subset {subset!r}; known: {', '.join(SUBSETS)}")
        target = root / subset
        if is_done(target):
            log.info("%s is complete: skipping its download", target)
            continue
        t0 = time.time()
        archive = download_url(f"{base_url.rstrip('/')}/{subset}.tar.gz", dest / f"{subset}.tar.gz",
                               md5=(md5 or {}).get(subset), sha256=(sha256 or {}).get(subset))
        staging = dest / f".{subset}.staging"
        extract_tar(archive, staging)
        got = staging / "LibriSpeech" / subset
        if not got.is_dir():
            raise LibriSpeechError(f"{archive} holds no LibriSpeech/{subset}/ folder: not a LibriSpeech archive")
        root.mkdir(parents=True, exist_ok=True)
        if target.exists():  # a half-moved earlier try
            shutil.rmtree(target)
        os.replace(got, target)
        mark_done(target)
        shutil.rmtree(staging)
        if not keep_archives:
            archive.unlink()
        log.info("%s ready in %.1f s", target, time.time() - t0)
    return root


def _trans_lines(part_dir: Path) -> Dict[str, Path]:
    """Every utterance id of a subset's ``*.trans.txt`` files, with the file naming it."""
    out: Dict[str, Path] = {}
    for trans in sorted(part_dir.rglob("*.trans.txt")):
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.split(maxsplit=1)
            if not fields:
                continue
            if len(fields) < 2:
                raise LibriSpeechError(f"{trans}:{lineno}: utterance {fields[0]!r} has no transcript")
            out[fields[0]] = trans
    return out


def librispeech_kaldi_dirs(corpus_dir: PathLike, out_dir: PathLike, sets: Sequence[str] = tuple(SETS),
                           num_jobs: int = 1, on_error: str = "fail", force: bool = False) -> Dict[str, Path]:
    """Kaldi data dirs ``<out_dir>/<set>`` of the LibriSpeech ``sets`` under ``corpus_dir``.

    ``corpus_dir`` is the folder holding the subsets (``.../LibriSpeech``). Outputs with done markers
    are kept unless ``force``. Returns set name → data dir (and ``oracle_<set>`` → oracle text).
    """
    from lhotse.recipes.librispeech import prepare_librispeech

    from asrkit.data.manifests import manifests_to_kaldi_dir

    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be fail or skip, not {on_error!r}")
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    if not corpus_dir.is_dir():
        raise LibriSpeechError(f"no LibriSpeech folder at {corpus_dir} (it holds train-clean-100/, dev-clean/, ...)")
    parts = subsets_of(sets)
    absent = [p for p in parts if not (corpus_dir / p).is_dir()]
    if absent:
        raise LibriSpeechError(f"{corpus_dir}: subset folder(s) missing: {', '.join(absent)} "
                               f"(download them, or run the recipe without --corpus-dir to download)")
    result: Dict[str, Path] = {}
    report: List[str] = []
    for name in sets:
        d = out_dir / name
        oracle = out_dir / "oracle" / name / "text"
        unlabelled = name in UNLABELLED
        result[name] = d
        if unlabelled:
            result[f"oracle_{name}"] = oracle
        if not force and is_done(d) and (not unlabelled or is_done(oracle)):
            log.info("%s is done: skipping", d)
            continue
        t0 = time.time()
        recordings, supervisions = [], []
        for part in SETS[name]:
            expected = _trans_lines(corpus_dir / part)
            if not expected:
                raise LibriSpeechError(f"{corpus_dir / part}: no *.trans.txt files")
            # output_dir=None: nothing cached by lhotse (the Kaldi dirs and stage 1's manifests are the record)
            m = prepare_librispeech(corpus_dir, dataset_parts=[part], output_dir=None, num_jobs=num_jobs)[part]
            got = set(m["recordings"].ids)
            lost = sorted(set(expected) - got)
            if lost:
                first = lost[0]
                audio = corpus_dir / part / Path(first.replace("-", "/")).parent / f"{first}.flac"
                msg = (f"{part}: {len(lost)} of {len(expected)} utterances have no readable FLAC, e.g. {audio} "
                       f"(listed in {expected[first]})")
                if on_error == "fail":
                    raise LibriSpeechError(msg + "; --on-error skip drops them")
                log.warning("%s: skipped", msg)
                report.append(f"{part}: skipped {len(lost)} utterance(s) without audio: {' '.join(lost)}")
            recordings.extend(m["recordings"])
            supervisions.extend(m["supervisions"])
        _check_ids_unique(name, [s.id for s in supervisions])
        from lhotse import RecordingSet, SupervisionSet

        recs = RecordingSet.from_recordings(recordings)
        if unlabelled:
            atomic_write_text(oracle, "".join(f"{s.id} {s.text}\n" for s in sorted(supervisions, key=lambda s: s.id)))
            mark_done(oracle)
            supervisions = [_no_text(s) for s in supervisions]
        manifests_to_kaldi_dir(recs, SupervisionSet.from_segments(supervisions), d, audio_root=corpus_dir)  # atomic
        mark_done(d)
        hours = sum(r.duration for r in recordings) / 3600
        log.info("%s: %d utterances, %d speakers, %.2f h from %s in %.1f s", d, len(supervisions),
                 len({s.speaker for s in supervisions}), hours, "+".join(SETS[name]), time.time() - t0)
        report.append(f"{name}: {len(supervisions)} utterances, {hours:.3f} h from {'+'.join(SETS[name])}")
    if report:
        atomic_write_text(out_dir / "prepare_report.txt", "\n".join(report) + "\n")
    _check_speakers_disjoint({n: result[n] for n in sets})
    return result


def _no_text(sup):
    from lhotse.utils import fastcopy

    return fastcopy(sup, text=None)


def _check_ids_unique(name: str, ids: Sequence[str]) -> None:
    seen, dup = set(), []
    for i in ids:
        if i in seen:
            dup.append(i)
        seen.add(i)
    if dup:
        raise LibriSpeechError(f"set {name}: utterance id(s) in more than one subset, e.g. {dup[0]}")


def _check_speakers_disjoint(dirs: Dict[str, Path]) -> None:
    """LibriSpeech's subsets have disjoint readers; a corpus that breaks this would leak dev speakers."""
    owner: Dict[str, str] = {}
    for name, d in dirs.items():
        for line in (d / "utt2spk").read_text(encoding="utf-8").splitlines():
            spk = line.split()[1]
            if owner.setdefault(spk, name) != name:
                raise LibriSpeechError(f"speaker {spk} is in both {owner[spk]} and {name} ({d / 'utt2spk'}): "
                                       f"the sets must be speaker-disjoint")
