"""Kaldi data dir <-> lhotse manifests (recordings, supervisions, cuts), validated before any work.

:func:`load_kaldi_data_dir` reads a data dir, validates every utterance (see :mod:`asrkit.data.validate`)
and builds lhotse manifests: one :class:`~lhotse.Recording` per ``wav.scp`` entry (plain paths are made
absolute against ``audio_root``; ``cmd |`` entries become command sources), one
:class:`~lhotse.SupervisionSegment` per utterance (``text``, ``speaker``, custom ``condition`` from
``utt2cond``, ``alignment["phone"]`` from ``phones.ctm``) and one cut per utterance whose id is the
utterance id. :func:`export_kaldi_dir` writes the cuts back as a data dir: with the same ``audio_root``
the files are the ones read, sorted. :func:`prepare_manifests` is the stage-1 driver for one set.
"""
from __future__ import annotations

import io
import logging
import os
import shlex
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

import soundfile as sf
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.audio import AudioSource
from lhotse.cut import MonoCut
from lhotse.supervision import AlignmentItem
from lhotse.utils import fastcopy
from tqdm import tqdm

from asrkit.data.kaldi_dir import (
    CtmEntry,
    KaldiFormat,
    KaldiUtterance,
    Table,
    is_pipe,
    pipe_command,
    read_kaldi_dir,
    read_table,
    relative_audio_path,
    resolve_audio_path,
    write_kaldi_dir,
)
from asrkit.data.validate import (
    DEFAULT_MIN_DURATION,
    DEFAULT_SAMPLE_RATE,
    ValidationIssue,
    ValidationReport,
    check_not_empty,
    check_on_error,
    finish,
)
from asrkit.utils.atomic import atomic_path, is_done, mark_done

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]

SEGMENT_TOLERANCE = 0.025  # seconds a segment may run past its recording's end (lhotse's own tolerance)
TIME_DIGITS = 7  # times are kept to 0.1 us: exact on a 16 kHz grid, no float noise


@dataclass
class PreparedSet:
    """The manifests of one set, with its validation report and, for unlabelled data, its oracle."""

    name: str
    recordings: RecordingSet
    supervisions: SupervisionSet
    cuts: CutSet
    report: ValidationReport
    oracle_cuts: Optional[CutSet] = None
    labelled: bool = True
    kaldi_format: KaldiFormat = field(default_factory=KaldiFormat)  # to write the Kaldi view alike


# ---------------------------------------------------------------------------------------------------
# audio probing


@dataclass
class AudioInfo:
    sampling_rate: int
    num_samples: int
    num_channels: int


def probe_audio(wav_value: str, audio_root: Optional[PathLike]) -> Tuple[Optional[AudioInfo], Optional[Tuple[str, str]], AudioSource]:
    """Header information of a ``wav.scp`` value without decoding plain files (``soundfile.info``);
    a pipe is run once and its output read. Returns (info, None, source) or (None, (reason, detail), source)."""
    if is_pipe(wav_value):
        cmd = pipe_command(wav_value)
        source = AudioSource(type="command", channels=[0], source=cmd)
        try:
            proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        except subprocess.TimeoutExpired:
            return None, ("unreadable_audio", f"command timed out: {cmd}"), source
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:] or [""]
            return None, ("unreadable_audio", f"command exited with {proc.returncode}: {cmd}: {err[0]}"), source
        if not proc.stdout:
            return None, ("empty_audio", f"command wrote nothing: {cmd}"), source
        try:
            data, sr = sf.read(io.BytesIO(proc.stdout), dtype="int16", always_2d=True)
        except Exception as e:  # soundfile raises several types
            return None, ("unreadable_audio", f"output of {cmd!r}: {e}"), source
        source.channels = list(range(data.shape[1]))
        return AudioInfo(int(sr), int(data.shape[0]), int(data.shape[1])), None, source
    path = resolve_audio_path(wav_value, audio_root)
    source = AudioSource(type="file", channels=[0], source=path)
    if not os.path.isfile(path):
        return None, ("missing_audio", f"no such file: {path}"), source
    try:
        info = sf.info(path)
    except Exception as e:
        return None, ("unreadable_audio", f"{path}: {str(e).strip()}"), source
    source.channels = list(range(info.channels))
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels)), None, source


def truncation(path: str, info: AudioInfo) -> Optional[str]:
    """Why a plain audio file holds less than its header says (None if it does not). A WAV file's
    data chunk size is compared with the bytes there are (libsndfile reports only what is there); any
    other format must let its last frame be read."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            block_align = None
            while True:
                hdr = f.read(8)
                if len(hdr) < 8:
                    return None
                cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                elif cid == b"data":
                    available = os.fstat(f.fileno()).st_size - f.tell()
                    if size in (0, 0xFFFFFFFF) or size <= available or not block_align:
                        return None  # a streamed header (size unknown) or a complete file
                    rate = info.sampling_rate
                    return (f"{path}: the header says {size / block_align / rate:.3f} s, the file holds "
                            f"{available / block_align / rate:.3f} s")
                else:
                    f.seek(size + (size & 1), os.SEEK_CUR)
    try:
        with sf.SoundFile(path) as snd:
            snd.seek(info.num_samples - 1)
            if len(snd.read(1)) == 1:
                return None
        err = "nothing there"
    except Exception as e:  # soundfile raises several types
        err = str(e).strip()
    return (f"{path}: the header says {info.num_samples / info.sampling_rate:.3f} s, but its last sample "
            f"cannot be read ({err})")


def mono_source(wav_value: str, audio_root: Optional[PathLike], channel: Optional[int]) -> AudioSource:
    """A command source (what Kaldi writes as ``sox ... |``) giving one channel of a multi-channel
    recording, ``channel`` (0-based) or, with None, the average of all (sox's remix scales by 1/n)."""
    remix = "-" if channel is None else str(channel + 1)
    if is_pipe(wav_value):
        cmd = f"{pipe_command(wav_value)} | sox -t wav - -t wav - remix {remix}"
    else:
        cmd = f"sox {shlex.quote(resolve_audio_path(wav_value, audio_root))} -t wav - remix {remix}"
    return AudioSource(type="command", channels=[0], source=cmd)


# ---------------------------------------------------------------------------------------------------
# reading and validating a data dir


def _shift(items: List[AlignmentItem], offset: float) -> List[AlignmentItem]:
    # lhotse's with_offset rounds to a 48 kHz grid; keep the times as read instead
    return [AlignmentItem(symbol=a.symbol, start=round(a.start + offset, TIME_DIGITS), duration=a.duration,
                          score=a.score) for a in items]


def _to_cut(sup: SupervisionSegment, rec: Recording) -> MonoCut:
    """One cut per utterance: the cut spans the supervision; its supervision starts at 0."""
    cut_sup = fastcopy(
        sup,
        start=0.0,
        alignment={k: _shift(v, -sup.start) for k, v in sup.alignment.items()} if sup.alignment else None,
    )
    return MonoCut(id=sup.id, start=sup.start, duration=sup.duration, channel=sup.channel,
                   supervisions=[cut_sup], recording=rec)


def load_kaldi_data_dir(
    data_dir: PathLike,
    audio_root: Optional[PathLike] = None,
    *,
    set_name: str = "",
    labelled: bool = True,
    sample_rate: Optional[int] = DEFAULT_SAMPLE_RATE,
    min_duration: float = DEFAULT_MIN_DURATION,
    on_error: str = "fail",
    oracle_text: Optional[PathLike] = None,
    report_path: Optional[PathLike] = None,
    progress: bool = True,
    channel: Optional[int] = None,
    downmix: bool = False,
) -> PreparedSet:
    """Validate a Kaldi data dir and build its lhotse manifests (in memory).

    :param audio_root: the corpus root that relative ``wav.scp`` paths are taken against (default: the
        current directory).
    :param labelled: a labelled set needs a non-empty transcript for every utterance; an unlabelled set
        keeps none (a ``text`` file in it, or ``oracle_text``, goes to the oracle cuts only).
    :param sample_rate: the expected rate (``None``: any).
    :param on_error: ``"fail"`` raises :class:`~asrkit.data.validate.DataValidationError` listing every
        problem; ``"skip"`` drops the utterances and counts them in the report.
    :param oracle_text: a ``text`` file with the true transcripts of an unlabelled set.
    :param report_path: where to write the validation report (also written, then raised, in fail mode).
    :param channel, downmix: a recording with several channels is refused (``multi_channel``) unless
        ``channel`` (0-based) takes one of them or ``downmix`` averages them (each through a ``sox``
        command source).

    Audio whose data ends before its header says is ``truncated``; a set with no valid utterance
    raises :class:`~asrkit.data.validate.EmptySetError`, even under ``on_error="skip"``.
    """
    if channel is not None and downmix:
        raise ValueError("give --channel N or --downmix, not both")
    check_on_error(on_error)
    t0 = time.time()
    kd = read_kaldi_dir(data_dir)
    report = ValidationReport(source=str(kd.path), set_name=set_name, on_error=on_error)
    issues: List[ValidationIssue] = []

    def add(utt: str, reason: str, where: str, detail: str = "") -> None:
        issues.append(ValidationIssue(utt, reason, where, detail))

    # --- which utterances there are, and their recordings ------------------------------------------
    utt2rec: Dict[str, str] = {}
    seg_times: Dict[str, Tuple[float, float]] = {}
    if kd.segments is not None:
        for utt, value in kd.segments.entries.items():
            rec, start, end = value.split()
            try:
                seg_times[utt] = (float(start), float(end))
            except ValueError:
                add(utt, "malformed_line", kd.segments.where(utt), f"times {start!r} {end!r} are not numbers")
            utt2rec[utt] = rec
    else:
        utt2rec = {r: r for r in kd.wav_scp.entries}
    rec2utts: Dict[str, List[str]] = {}
    for utt, rec in utt2rec.items():
        rec2utts.setdefault(rec, []).append(utt)

    text_table = kd.text if labelled else None
    universe = set(utt2rec) | set(kd.utt2spk.entries)
    if text_table is not None:
        universe |= set(text_table.entries)

    # --- lines that could not be read, duplicates ------------------------------------------------
    for table in (kd.wav_scp, kd.segments, kd.text, kd.utt2spk, kd.utt2cond, kd.phones_ctm):
        if table is None:
            continue
        is_rec_table = table is kd.wav_scp and kd.segments is not None
        for bad in table.bad_lines:
            utts = rec2utts.get(bad.key, [bad.key]) if is_rec_table else [bad.key]
            for utt in utts:
                universe.add(utt)
                add(utt, bad.reason, f"{bad.file}:{bad.lineno}", bad.detail)
        for key, lines in getattr(table, "duplicates", {}).items():
            utts = rec2utts.get(key, [key]) if is_rec_table else [key]
            for utt in utts:
                universe.add(utt)
                add(utt, "duplicate_id", f"{table.path}:{','.join(map(str, lines))}",
                    f"'{key}' is on lines {', '.join(map(str, lines))}")

    # --- per-utterance table checks ----------------------------------------------------------------
    for utt in sorted(universe):
        if utt not in utt2rec:
            if kd.segments is not None:
                add(utt, "missing_audio", str(kd.segments.path), "no entry in segments")
            else:
                add(utt, "missing_audio", str(kd.wav_scp.path), "no entry in wav.scp")
        elif utt2rec[utt] not in kd.wav_scp.entries and not any(b.key == utt2rec[utt] for b in kd.wav_scp.bad_lines):
            add(utt, "missing_audio", kd.segments.where(utt) if kd.segments else str(kd.wav_scp.path),
                f"recording '{utt2rec[utt]}' has no entry in {kd.wav_scp.path}")
        if utt not in kd.utt2spk.entries and not any(b.key == utt for b in kd.utt2spk.bad_lines):
            add(utt, "missing_utt2spk", str(kd.utt2spk.path), "no entry")
        if labelled:
            if kd.text is None:
                add(utt, "missing_transcript", str(kd.path / "text"),
                    "the set is labelled but has no text file (unlabelled sets: labelled=False)")
            elif utt in kd.text.entries:
                if not kd.text.entries[utt].strip():
                    add(utt, "empty_transcript", kd.text.where(utt))
            elif not any(b.key == utt for b in kd.text.bad_lines):
                add(utt, "missing_transcript", str(kd.text.path), "no entry")

    # --- audio ---------------------------------------------------------------------------------------
    recs_needed = sorted({utt2rec[u] for u in universe if u in utt2rec and utt2rec[u] in kd.wav_scp.entries})
    recordings: Dict[str, Recording] = {}
    for rec in tqdm(recs_needed, desc=f"probing audio {set_name}".strip(), disable=not progress or None,
                    mininterval=2.0):
        info, problem, source = probe_audio(kd.wav_scp.entries[rec], audio_root)
        where = kd.wav_scp.where(rec)
        if problem is None and info.num_samples == 0:
            problem = ("empty_audio", f"{source.source}: 0 samples")
        if problem is None and sample_rate is not None and info.sampling_rate != sample_rate:
            problem = ("sample_rate_mismatch", f"{info.sampling_rate} Hz, expected {sample_rate} Hz")
        if problem is None and source.type == "file":
            cut_short = truncation(source.source, info)
            if cut_short is not None:
                problem = ("truncated", cut_short)
        if problem is None and info.num_channels > 1:
            if channel is None and not downmix:
                problem = ("multi_channel", f"{source.source}: {info.num_channels} channels; take one with "
                                            f"--channel N (0-based) or average them with --downmix")
            elif channel is not None and channel >= info.num_channels:
                problem = ("multi_channel", f"{source.source}: {info.num_channels} channels, no channel {channel}")
            else:
                source = mono_source(kd.wav_scp.entries[rec], audio_root, channel)
        if problem is not None:
            for utt in rec2utts.get(rec, []):
                if utt in universe:
                    add(utt, problem[0], where, problem[1])
            continue
        recordings[rec] = Recording(
            id=rec, sources=[source], sampling_rate=info.sampling_rate, num_samples=info.num_samples,
            duration=info.num_samples / info.sampling_rate,
        )

    # --- durations -----------------------------------------------------------------------------------
    spans: Dict[str, Tuple[float, float]] = {}
    for utt in sorted(universe):
        rec = utt2rec.get(utt)
        if rec not in recordings:
            continue
        dur = recordings[rec].duration
        if kd.segments is not None:
            if utt not in seg_times:
                continue
            start, end = seg_times[utt]
            if end == -1:
                end = dur
            if start < 0 or end <= start or end > dur + SEGMENT_TOLERANCE:
                add(utt, "bad_segment", kd.segments.where(utt),
                    f"{start}-{end} s, recording '{rec}' lasts {dur:.4f} s")
                continue
        else:
            start, end = 0.0, dur
        spans[utt] = (start, end)
        if end - start < min_duration:
            add(utt, "too_short", kd.segments.where(utt) if kd.segments else kd.wav_scp.where(rec),
                f"{end - start:.3f} s < {min_duration} s")

    # --- side tables that refer to unknown utterances: notes, not errors ------------------------------
    for table in (kd.utt2cond, kd.phones_ctm, kd.text if not labelled else None):
        if table is None:
            continue
        extra = sorted(set(table.entries) - universe - set(utt2rec))
        if extra:
            report.notes.append(f"{table.path}: {len(extra)} entr(ies) for utterances not in the set ignored "
                                f"(first: {extra[0]})")
    if kd.phones_ctm is not None:
        channels = {e.channel for es in kd.phones_ctm.entries.values() for e in es}
        if channels - {"1"}:
            report.notes.append(f"{kd.phones_ctm.path}: channels {sorted(channels)} are written back as 1")

    report.num_total = len(universe)
    bad_utts = {i.utt_id for i in issues}
    finish(issues, report, report_path)
    check_not_empty(report, report_path)
    if channel is not None or downmix:
        report.notes.append(f"multi-channel recordings: {'averaged' if downmix else f'channel {channel} taken'}")

    # --- manifests -----------------------------------------------------------------------------------
    oracle_table: Optional[Table] = None
    if not labelled:
        if oracle_text is not None:
            oracle_table = read_table(oracle_text)
            if oracle_table.bad_lines or oracle_table.duplicates:
                b = oracle_table.bad_lines[0] if oracle_table.bad_lines else None
                where = f"{b.file}:{b.lineno}" if b else str(oracle_table.path)
                raise ValueError(f"oracle text {where}: "
                                 + (f"utterance '{b.key}': {b.reason} {b.detail}" if b else
                                    f"duplicate ids {sorted(oracle_table.duplicates)[:5]}"))
        elif kd.text is not None:
            oracle_table = kd.text
    sups: List[SupervisionSegment] = []
    for utt in sorted(universe - bad_utts):
        rec = utt2rec[utt]
        start, end = spans[utt]
        text = kd.text.entries[utt] if labelled else None
        custom = None
        if kd.utt2cond is not None and utt in kd.utt2cond.entries:
            custom = {"condition": kd.utt2cond.entries[utt]}
        alignment = None
        if kd.phones_ctm is not None and utt in kd.phones_ctm.entries:
            alignment = {"phone": [
                AlignmentItem(symbol=e.symbol, start=round(start + e.start, TIME_DIGITS),
                              duration=round(e.duration, TIME_DIGITS))
                for e in kd.phones_ctm.entries[utt]
            ]}
        sups.append(SupervisionSegment(
            id=utt, recording_id=rec, start=round(start, TIME_DIGITS), duration=round(end - start, TIME_DIGITS),
            channel=0, text=text, speaker=kd.utt2spk.entries[utt], custom=custom, alignment=alignment,
        ))
    used_recs = sorted({s.recording_id for s in sups})
    recording_set = RecordingSet.from_recordings(recordings[r] for r in used_recs)
    supervision_set = SupervisionSet.from_segments(sups)
    cuts = CutSet.from_cuts(_to_cut(s, recordings[s.recording_id]) for s in sups)
    oracle_cuts = None
    if oracle_table is not None:
        known = [c for c in cuts if c.id in oracle_table.entries]
        missing = len(cuts) - len(known)
        if missing:
            report.notes.append(f"oracle text {oracle_table.path}: no transcript for {missing} utterance(s)")
            log.warning(f"oracle text {oracle_table.path}: no transcript for {missing} of {len(cuts)} utterances")
        oracle_cuts = CutSet.from_cuts(with_text(c, oracle_table.entries.get(c.id)) for c in cuts)
    hours = sum(s.duration for s in sups) / 3600
    elapsed = time.time() - t0
    log.info(f"loaded {kd.path}: {len(sups)} utterances, {len(used_recs)} recordings, {hours:.2f} h "
             f"in {elapsed:.1f} s ({len(universe) / max(elapsed, 1e-9):.0f} utt/s)")
    return PreparedSet(name=set_name, recordings=recording_set, supervisions=supervision_set, cuts=cuts,
                       report=report, oracle_cuts=oracle_cuts, labelled=labelled, kaldi_format=kd.kaldi_format())


def with_text(cut: MonoCut, text: Optional[str]) -> MonoCut:
    """A copy of a one-utterance cut whose supervisions carry ``text`` (``None`` removes it)."""
    return fastcopy(cut, supervisions=[fastcopy(s, text=text) for s in cut.supervisions])


def strip_text(cuts: Iterable[MonoCut]) -> CutSet:
    """The cuts without transcripts (unlabelled data keeps none)."""
    return CutSet.from_cuts(with_text(c, None) for c in cuts)


# ---------------------------------------------------------------------------------------------------
# manifests -> Kaldi data dir


def _wav_value(rec: Recording, audio_root: Optional[PathLike]) -> str:
    if len(rec.sources) != 1:
        raise ValueError(f"recording {rec.id!r}: {len(rec.sources)} sources cannot be one wav.scp entry")
    src = rec.sources[0]
    if src.type == "file":
        return relative_audio_path(src.source, audio_root)
    if src.type == "command":
        return f"{src.source} |"
    raise ValueError(f"recording {rec.id!r}: a {src.type!r} source cannot be written to wav.scp")


def _utterances(pairs: List[Tuple[Recording, SupervisionSegment]], audio_root) -> List[KaldiUtterance]:
    """``pairs`` hold supervisions in recording time."""
    segmented = any(
        s.id != r.id or abs(s.start) > 1e-7 or abs(s.duration - r.duration) > 1e-6 for r, s in pairs
    )
    out = []
    for rec, sup in pairs:
        phones = None
        if sup.alignment and "phone" in sup.alignment:
            phones = [CtmEntry(start=round(a.start - sup.start, TIME_DIGITS), duration=a.duration, symbol=a.symbol)
                      for a in sup.alignment["phone"]]
        if sup.speaker is None:
            raise ValueError(f"supervision {sup.id!r} has no speaker: utt2spk cannot be written")
        out.append(KaldiUtterance(
            utt_id=sup.id, recording_id=rec.id, wav=_wav_value(rec, audio_root), speaker=sup.speaker,
            start=sup.start if segmented else 0.0,
            end=round(sup.start + sup.duration, TIME_DIGITS) if segmented else None,
            text=sup.text, condition=(sup.custom or {}).get("condition"), phones=phones, duration=sup.duration,
        ))
    return out


def export_kaldi_dir(cuts: CutSet, out_dir: PathLike, audio_root: Optional[PathLike] = None,
                     fmt: Optional[KaldiFormat] = None) -> Path:
    """Write cuts as a Kaldi data dir (atomically). Plain audio paths under ``audio_root`` are written
    relative to it, others absolute; ``segments`` is written unless every utterance is a whole
    recording of the same id; ``fmt`` (``PreparedSet.kaldi_format``) reproduces the input's time
    format and its ``utt2dur``."""
    pairs = []
    for cut in cuts:
        for sup in cut.supervisions:
            rec_sup = fastcopy(
                sup, start=round(cut.start + sup.start, TIME_DIGITS),
                alignment={k: _shift(v, cut.start) for k, v in sup.alignment.items()} if sup.alignment else None,
            )
            pairs.append((cut.recording, rec_sup))
    return write_kaldi_dir(_utterances(pairs, audio_root), out_dir, fmt=fmt)


def manifests_to_kaldi_dir(recordings: RecordingSet, supervisions: SupervisionSet, out_dir: PathLike,
                           audio_root: Optional[PathLike] = None, fmt: Optional[KaldiFormat] = None) -> Path:
    """Write a recording and a supervision manifest as a Kaldi data dir (see :func:`export_kaldi_dir`)."""
    recs = {r.id: r for r in recordings}  # (lazy manifests cannot be indexed by id)
    missing = [s.id for s in supervisions if s.recording_id not in recs]
    if missing:
        raise ValueError(f"{len(missing)} supervision(s) have no recording, e.g. {missing[0]!r}")
    pairs = [(recs[s.recording_id], s) for s in supervisions]
    return write_kaldi_dir(_utterances(pairs, audio_root), out_dir, fmt=fmt)


# ---------------------------------------------------------------------------------------------------
# the stage-1 driver for one set


def manifest_paths(out_dir: PathLike, set_name: str) -> Dict[str, Path]:
    out = Path(out_dir)
    return {
        "recordings": out / f"recordings_{set_name}.jsonl.gz",
        "supervisions": out / f"supervisions_{set_name}.jsonl.gz",
        "cuts": out / f"cuts_{set_name}.jsonl.gz",
        "report": out / f"validation_{set_name}.txt",
        "oracle": out / "oracle" / f"cuts_{set_name}.jsonl.gz",
    }


def write_prepared_set(prepared: PreparedSet, out_dir: PathLike, kaldi_view_dir: Optional[PathLike] = None) -> Dict[str, Path]:
    """Write a set's manifests, report, oracle and Kaldi view, each atomically with its done marker."""
    paths = manifest_paths(out_dir, prepared.name)
    written = {}
    for key, manifest in (("recordings", prepared.recordings), ("supervisions", prepared.supervisions),
                          ("cuts", prepared.cuts)):
        with atomic_path(paths[key]) as tmp:
            manifest.to_file(tmp)
        mark_done(paths[key])
        written[key] = paths[key]
    prepared.report.write(paths["report"])
    mark_done(paths["report"])
    written["report"] = paths["report"]
    if prepared.oracle_cuts is not None:
        with atomic_path(paths["oracle"]) as tmp:
            prepared.oracle_cuts.to_file(tmp)
        mark_done(paths["oracle"])
        written["oracle"] = paths["oracle"]
    if kaldi_view_dir is not None:
        export_kaldi_dir(prepared.cuts, kaldi_view_dir, fmt=prepared.kaldi_format)
        mark_done(kaldi_view_dir)
        written["kaldi_view"] = Path(kaldi_view_dir)
    return written


def expected_outputs(out_dir: PathLike, set_name: str, with_oracle: bool,
                     kaldi_view_dir: Optional[PathLike]) -> List[Path]:
    paths = manifest_paths(out_dir, set_name)
    outs = [paths[k] for k in ("recordings", "supervisions", "cuts", "report")]
    if with_oracle:
        outs.append(paths["oracle"])
    if kaldi_view_dir is not None:
        outs.append(Path(kaldi_view_dir))
    return outs


def prepare_manifests(
    data_dir: PathLike,
    set_name: str,
    out_dir: PathLike,
    audio_root: Optional[PathLike] = None,
    *,
    labelled: bool = True,
    on_error: str = "fail",
    min_duration: float = DEFAULT_MIN_DURATION,
    sample_rate: Optional[int] = DEFAULT_SAMPLE_RATE,
    oracle_text: Optional[PathLike] = None,
    kaldi_view_dir: Optional[PathLike] = None,
    force: bool = False,
    channel: Optional[int] = None,
    downmix: bool = False,
) -> Dict[str, Path]:
    """Stage 1 for one set: validate ``data_dir`` and write ``recordings_<set>.jsonl.gz``,
    ``supervisions_<set>.jsonl.gz``, ``cuts_<set>.jsonl.gz``, ``validation_<set>.txt``, for an
    unlabelled set with known transcripts ``oracle/cuts_<set>.jsonl.gz``, and the Kaldi view in
    ``kaldi_view_dir``. Skips everything when every output has its done marker (unless ``force``)."""
    with_oracle = not labelled and (oracle_text is not None or (Path(data_dir) / "text").is_file())
    outs = expected_outputs(out_dir, set_name, with_oracle, kaldi_view_dir)
    if not force and all(is_done(p) for p in outs):
        log.info(f"manifests of {set_name} are done in {out_dir}: skipping")
        return {p.name: p for p in outs}
    paths = manifest_paths(out_dir, set_name)
    prepared = load_kaldi_data_dir(
        data_dir, audio_root, set_name=set_name, labelled=labelled, sample_rate=sample_rate,
        min_duration=min_duration, on_error=on_error, oracle_text=oracle_text,
        report_path=paths["report"], channel=channel, downmix=downmix,
    )
    written = write_prepared_set(prepared, out_dir, kaldi_view_dir)
    log.info(f"wrote manifests of {set_name} ({len(prepared.cuts)} cuts) to {out_dir}")
    return written
