"""Speaker-disjoint splits of one corpus into labelled / unlabelled / dev / test sets.

Speakers are assigned to sets either by explicit lists or by proportions of the speakers (sorted, then
shuffled with an explicit seed, then cut into consecutive runs; largest-remainder rounding), so a split
is deterministic. Unlabelled sets lose their transcripts; their true transcripts go only to the oracle
manifest ``oracle/cuts_<set>.jsonl.gz``.
"""
from __future__ import annotations

import logging
import math
import os
import random
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Union

from lhotse import CutSet, RecordingSet, SupervisionSet
from lhotse.utils import fastcopy

from asrkit.data.kaldi_dir import read_table
from asrkit.data.manifests import (
    DEFAULT_MIN_DURATION,
    DEFAULT_SAMPLE_RATE,
    PreparedSet,
    expected_outputs,
    load_kaldi_data_dir,
    strip_text,
    write_prepared_set,
)
from asrkit.data.validate import check_not_empty
from asrkit.utils.atomic import atomic_write_text, is_done, mark_done

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]

DEFAULT_UNLABELLED = ("train_unsup",)


def parse_proportions(spec: str) -> Dict[str, float]:
    """``"train_sup=0.4,train_unsup=0.35,dev=0.1,test=0.15"`` -> an ordered dict."""
    out: Dict[str, float] = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"bad proportion {item!r} in {spec!r}: expected set=fraction")
        out[name.strip()] = float(value)
    return out


def split_speakers(speakers: Iterable[str], proportions: Mapping[str, float], seed: int) -> Dict[str, List[str]]:
    """Assign speakers to sets by proportions of the number of speakers, deterministically.

    Proportions must be non-negative and sum to at most 1 (a sum below 1 leaves speakers unused).
    Every set with a positive proportion gets at least one speaker when there are enough speakers.
    Each returned list is sorted.
    """
    spks = sorted(set(speakers))
    names = list(proportions)
    props = [float(proportions[n]) for n in names]
    if any(p < 0 for p in props):
        raise ValueError(f"negative proportion in {dict(proportions)}")
    total = sum(props)
    if total > 1 + 1e-6:
        raise ValueError(f"proportions sum to {total:.4f} > 1: {dict(proportions)}")
    n = len(spks)
    targets = [n * p for p in props]
    counts = [math.floor(t + 1e-9) for t in targets]
    remaining = min(n, int(round(n * total))) - sum(counts)
    order = sorted(range(len(names)), key=lambda i: (-(targets[i] - counts[i]), i))
    for i in order[: max(remaining, 0)]:
        counts[i] += 1
    for i, p in enumerate(props):  # no positive-proportion set left empty
        if p > 0 and counts[i] == 0:
            donor = max(range(len(names)), key=lambda j: (counts[j], -j))
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    rng = random.Random(seed)
    rng.shuffle(spks)
    out, pos = {}, 0
    for name, c in zip(names, counts):
        out[name] = sorted(spks[pos: pos + c])
        pos += c
    return out


def check_speaker_lists(lists: Mapping[str, Sequence[str]], speakers: Optional[Iterable[str]] = None) -> Dict[str, List[str]]:
    """Check explicit speaker lists: disjoint and, given ``speakers``, all known."""
    seen: Dict[str, str] = {}
    for name, spks in lists.items():
        for s in spks:
            if s in seen and seen[s] != name:
                raise ValueError(f"speaker {s!r} is in two sets: {seen[s]} and {name}")
            seen[s] = name
    if speakers is not None:
        unknown = sorted(set(seen) - set(speakers))
        if unknown:
            raise ValueError(f"{len(unknown)} speaker(s) in the lists are not in the corpus: {unknown[:10]}")
    return {name: sorted(set(spks)) for name, spks in lists.items()}


def read_speaker_lists(path: PathLike) -> Dict[str, List[str]]:
    """Lines ``<set> <spk> <spk> ...`` (a set may span several lines; ``#`` starts a comment)."""
    lists: Dict[str, List[str]] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, *spks = line.split()
        lists.setdefault(name, []).extend(spks)
    return lists


def format_speaker_lists(lists: Mapping[str, Sequence[str]], header: Sequence[str] = ()) -> str:
    return "".join(f"# {h}\n" for h in header) + "".join(f"{n} {' '.join(s)}\n" for n, s in lists.items())


def check_speaker_disjoint(speakers_by_set: Mapping[str, Iterable[str]]) -> None:
    """Raise if a speaker appears in two sets."""
    owner: Dict[str, str] = {}
    for name, spks in speakers_by_set.items():
        for s in set(spks):
            if s in owner:
                raise ValueError(f"sets {owner[s]} and {name} share speaker {s!r}: the split is not speaker-disjoint")
            owner[s] = name


def subset_prepared(corpus: PreparedSet, name: str, speakers: Iterable[str], labelled: bool,
                    utt2spk_raw: Mapping[str, str]) -> PreparedSet:
    """The part of a prepared corpus spoken by ``speakers``; unlabelled: text only in the oracle cuts."""
    spk = set(speakers)
    cuts = CutSet.from_cuts(c for c in corpus.cuts if c.supervisions[0].speaker in spk)
    ids = {c.id for c in cuts}
    sups = [s for s in corpus.supervisions if s.id in ids]
    recs = {s.recording_id for s in sups}
    oracle = None
    if not labelled:
        oracle = cuts
        cuts = strip_text(cuts)
        sups = [fastcopy(s, text=None) for s in sups]
    set_utts = [u for u, s in utt2spk_raw.items() if s in spk]
    report = corpus.report.subset(set_utts, name, num_total=len(set_utts))
    return PreparedSet(
        name=name,
        recordings=RecordingSet.from_recordings(r for r in corpus.recordings if r.id in recs),
        supervisions=SupervisionSet.from_segments(sups),
        cuts=cuts,
        report=report,
        oracle_cuts=oracle,
        labelled=labelled,
        kaldi_format=corpus.kaldi_format,
    )


def split_outputs(out_dir: PathLike, names: Sequence[str], unlabelled_sets: Sequence[str],
                  kaldi_view_root: Optional[PathLike]) -> List[Path]:
    """Every output of :func:`prepare_split` (each has a done marker)."""
    out = Path(out_dir)
    views = {n: (Path(kaldi_view_root) / n if kaldi_view_root is not None else None) for n in names}
    return [out / "split_speakers.txt", out / "validation_corpus.txt"] + [
        p for n in names for p in expected_outputs(out, n, n in unlabelled_sets, views[n])]


def prepare_split(
    data_dir: PathLike,
    out_dir: PathLike,
    audio_root: Optional[PathLike] = None,
    *,
    proportions: Optional[Mapping[str, float]] = None,
    speaker_lists: Optional[Mapping[str, Sequence[str]]] = None,
    seed: int = 0,
    unlabelled_sets: Sequence[str] = DEFAULT_UNLABELLED,
    on_error: str = "fail",
    min_duration: float = DEFAULT_MIN_DURATION,
    sample_rate: Optional[int] = DEFAULT_SAMPLE_RATE,
    kaldi_view_root: Optional[PathLike] = None,
    force: bool = False,
    channel: Optional[int] = None,
    downmix: bool = False,
) -> Dict[str, Dict[str, Path]]:
    """Validate a labelled corpus once, split its speakers into sets and write each set's files
    (``recordings_/supervisions_/cuts_<set>.jsonl.gz``, ``validation_<set>.txt``, for unlabelled sets
    ``oracle/cuts_<set>.jsonl.gz``, the Kaldi view ``<kaldi_view_root>/<set>/``), plus
    ``split_speakers.txt`` (the assignment, reusable as ``speaker_lists``) and
    ``validation_corpus.txt`` (the whole corpus's report). Skips when every output is done.

    The split is made on the speakers of the raw ``utt2spk``, before validation, so skipping a bad
    utterance never moves a speaker to another set.
    """
    if (proportions is None) == (speaker_lists is None):
        raise ValueError("give exactly one of proportions and speaker_lists")
    out = Path(out_dir)
    names = list(proportions if proportions is not None else speaker_lists)
    for u in unlabelled_sets:
        if u not in names:
            raise ValueError(f"unlabelled set {u!r} is not one of the sets {names}")
    views = {n: (Path(kaldi_view_root) / n if kaldi_view_root is not None else None) for n in names}
    split_file, corpus_report = out / "split_speakers.txt", out / "validation_corpus.txt"
    outs = split_outputs(out, names, unlabelled_sets, kaldi_view_root)
    if not force and all(is_done(p) for p in outs):
        log.info(f"split of {data_dir} is done in {out}: skipping")
        return {n: {p.name: p for p in expected_outputs(out, n, n in unlabelled_sets, views[n])} for n in names}

    utt2spk = read_table(Path(data_dir) / "utt2spk", min_fields=2, max_fields=2).entries
    speakers = sorted(set(utt2spk.values()))
    if speaker_lists is not None:
        assignment = check_speaker_lists(speaker_lists, speakers)
        how = "explicit speaker lists"
    else:
        assignment = split_speakers(speakers, proportions, seed)
        how = f"proportions {dict(proportions)}, seed {seed}"
    check_speaker_disjoint(assignment)
    unused = sorted(set(speakers) - {s for v in assignment.values() for s in v})
    if unused:
        log.info(f"{len(unused)} speaker(s) are in no set")

    corpus = load_kaldi_data_dir(
        data_dir, audio_root, set_name="corpus", labelled=True, sample_rate=sample_rate,
        min_duration=min_duration, on_error=on_error, report_path=corpus_report, channel=channel, downmix=downmix,
    )
    corpus.report.notes.append(f"split by {how}; {len(unused)} speaker(s) in no set")
    corpus.report.write(corpus_report)
    mark_done(corpus_report)

    result: Dict[str, Dict[str, Path]] = {}
    for name in names:
        part = subset_prepared(corpus, name, assignment[name], name not in unlabelled_sets, utt2spk)
        check_not_empty(part.report)  # every utterance of its speakers was skipped
        result[name] = write_prepared_set(part, out, views[name])
        hours = sum(c.duration for c in part.cuts) / 3600
        log.info(f"{name}: {len(assignment[name])} speakers, {len(part.cuts)} cuts, {hours:.2f} h"
                 + (" (unlabelled; true text in the oracle manifest)" if name in unlabelled_sets else ""))
    header = [f"speaker-disjoint split of {data_dir}", f"by {how}"]
    atomic_write_text(split_file, format_speaker_lists(assignment, header))
    mark_done(split_file)
    return result
