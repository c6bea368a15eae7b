"""Kaldi data directories: read them line by line (keeping file and line for error messages), write them.

A Kaldi data dir is a folder of text tables keyed by an id (``wav.scp``, ``text``, ``utt2spk``,
``spk2utt``, optional ``segments``, ``utt2cond`` and ``phones.ctm``). Reading keeps the raw bytes'
verdict (a line that is not UTF-8 is recorded with its line number, never decoded with replacement
characters silently), duplicate keys and malformed lines, so that :mod:`asrkit.data.validate` can name
each problem. Writing sorts every table in C order (``LC_ALL=C sort``; for UTF-8 this equals Python's
code-point order) and separates key and value by one space.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

from asrkit.utils.atomic import atomic_path

PathLike = Union[str, os.PathLike]

# files of a data dir that this module reads and writes, in the order they are written
TABLE_FILES = ("wav.scp", "segments", "text", "utt2spk", "spk2utt", "utt2cond", "utt2dur", "phones.ctm")


@dataclass
class KaldiFormat:
    """How times were written in a data dir, so that writing it back gives the same bytes.

    ``decimals`` maps a file (``segments``, ``phones.ctm``, ``utt2dur``) to its fixed number of decimals;
    a file not in it gets :func:`format_time`'s shortest form. ``utt2dur`` is written only when
    ``with_utt2dur``."""

    decimals: Dict[str, int] = field(default_factory=dict)
    with_utt2dur: bool = False


def detect_decimals(tokens: Iterable[str]) -> Optional[int]:
    """The number of decimals if every token has the same one (``["0.10", "1.25"]`` -> 2), else None."""
    seen = set()
    for t in tokens:
        seen.add(len(t.split(".", 1)[1]) if "." in t else 0)
        if len(seen) > 1:
            return None
    return seen.pop() if seen else None


@dataclass
class BadLine:
    """A line that could not be used: not UTF-8 or malformed."""

    file: Path
    lineno: int  # 1-based
    key: str  # best guess of the line's id (first token, decoded with replacement if need be)
    reason: str  # "non_utf8" or "malformed_line"
    detail: str = ""


@dataclass
class Table:
    """One key/value table of a data dir, with the line of each entry."""

    path: Path
    entries: Dict[str, str] = field(default_factory=dict)  # key -> value (first occurrence)
    lines: Dict[str, int] = field(default_factory=dict)  # key -> 1-based line of that occurrence
    duplicates: Dict[str, List[int]] = field(default_factory=dict)  # key -> every line it is on
    bad_lines: List[BadLine] = field(default_factory=list)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def where(self, key: str) -> str:
        """``file:line`` of a key, for messages."""
        line = self.lines.get(key)
        return f"{self.path}:{line}" if line else str(self.path)


@dataclass
class CtmEntry:
    start: float  # seconds from the start of the utterance
    duration: float
    symbol: str
    channel: str = "1"


@dataclass
class CtmTable:
    path: Path
    entries: Dict[str, List[CtmEntry]] = field(default_factory=dict)
    lines: Dict[str, int] = field(default_factory=dict)  # first line of each utterance
    bad_lines: List[BadLine] = field(default_factory=list)
    decimals: Optional[int] = None  # fixed number of decimals of its times, if any

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def where(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.path}:{line}" if line else str(self.path)


@dataclass
class KaldiDataDir:
    """The raw tables of a data dir; optional ones are ``None`` when their file is absent."""

    path: Path
    wav_scp: Table
    utt2spk: Table
    text: Optional[Table] = None
    segments: Optional[Table] = None  # utt -> "rec start end"
    utt2cond: Optional[Table] = None
    phones_ctm: Optional[CtmTable] = None
    spk2utt: Optional[Table] = None
    utt2dur: Optional[Table] = None

    def kaldi_format(self) -> KaldiFormat:
        """The time format of this dir's files (see :class:`KaldiFormat`)."""
        fmt = KaldiFormat(with_utt2dur=self.utt2dur is not None)
        found = {
            "segments": detect_decimals(t for v in self.segments.entries.values() for t in v.split()[1:])
            if self.segments else None,
            "utt2dur": detect_decimals(self.utt2dur.entries.values()) if self.utt2dur else None,
            "phones.ctm": self.phones_ctm.decimals if self.phones_ctm else None,
        }
        fmt.decimals = {k: v for k, v in found.items() if v is not None}
        return fmt

    def tables(self) -> List[Union[Table, CtmTable]]:
        return [
            t
            for t in (self.wav_scp, self.segments, self.text, self.utt2spk, self.spk2utt, self.utt2cond,
                      self.phones_ctm)
            if t is not None
        ]


def _iter_raw_lines(path: Path) -> Iterable[Tuple[int, bytes]]:
    data = path.read_bytes()
    for i, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if raw.strip():
            yield i, raw


def _decode(path: Path, lineno: int, raw: bytes) -> Tuple[Optional[str], Optional[BadLine]]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        key = raw.split(None, 1)[0].decode("utf-8", errors="replace") if raw.split() else "?"
        return None, BadLine(path, lineno, key, "non_utf8", f"byte {e.start}: {raw[e.start:e.start + 1]!r}")


def split_key_value(line: str) -> Tuple[str, str]:
    """``"utt  A B"`` -> ``("utt", "A B")``: the value is the rest of the line after the first run of
    whitespace, with trailing whitespace removed (inner spacing kept)."""
    parts = line.strip().split(None, 1)
    key = parts[0]
    value = parts[1].rstrip() if len(parts) > 1 else ""
    return key, value


def read_table(path: PathLike, min_fields: int = 1, max_fields: Optional[int] = None) -> Table:
    """Read a key/value table, keeping lines, duplicates, non-UTF-8 and malformed lines."""
    path = Path(path)
    table = Table(path)
    for lineno, raw in _iter_raw_lines(path):
        line, bad = _decode(path, lineno, raw)
        if bad is not None:
            table.bad_lines.append(bad)
            continue
        key, value = split_key_value(line)
        n_fields = 1 + len(value.split())
        if n_fields < min_fields or (max_fields is not None and n_fields > max_fields):
            want = f"{min_fields}" if max_fields == min_fields else f"{min_fields}..{max_fields or 'n'}"
            table.bad_lines.append(
                BadLine(path, lineno, key, "malformed_line", f"{n_fields} field(s), expected {want}")
            )
            continue
        if key in table.entries:
            table.duplicates.setdefault(key, [table.lines[key]]).append(lineno)
            continue
        table.entries[key] = value
        table.lines[key] = lineno
    return table


def read_ctm(path: PathLike) -> CtmTable:
    """Read ``<utt> <channel> <start> <dur> <symbol> [<conf>]`` lines (times relative to the utterance)."""
    path = Path(path)
    table = CtmTable(path)
    times: List[str] = []
    for lineno, raw in _iter_raw_lines(path):
        line, bad = _decode(path, lineno, raw)
        if bad is not None:
            table.bad_lines.append(bad)
            continue
        f = line.split()
        try:
            if len(f) not in (5, 6):
                raise ValueError(f"{len(f)} field(s), expected 5")
            entry = CtmEntry(start=float(f[2]), duration=float(f[3]), symbol=f[4], channel=f[1])
            if entry.duration < 0 or entry.start < 0:
                raise ValueError("negative start or duration")
        except ValueError as e:
            table.bad_lines.append(BadLine(path, lineno, f[0], "malformed_line", str(e)))
            continue
        table.entries.setdefault(f[0], []).append(entry)
        table.lines.setdefault(f[0], lineno)
        times += f[2:4]
    table.decimals = detect_decimals(times)
    return table


def read_kaldi_dir(data_dir: PathLike) -> KaldiDataDir:
    """Read every table of a data dir that exists. ``wav.scp`` and ``utt2spk`` are required."""
    d = Path(data_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"Kaldi data dir not found: {d}")
    for required in ("wav.scp", "utt2spk"):
        if not (d / required).is_file():
            raise FileNotFoundError(f"Kaldi data dir {d} has no {required}")

    def opt(name: str, **kw) -> Optional[Table]:
        return read_table(d / name, **kw) if (d / name).is_file() else None

    return KaldiDataDir(
        path=d,
        wav_scp=read_table(d / "wav.scp", min_fields=2),
        utt2spk=read_table(d / "utt2spk", min_fields=2, max_fields=2),
        text=opt("text"),
        segments=opt("segments", min_fields=4, max_fields=4),
        utt2cond=opt("utt2cond", min_fields=2, max_fields=2),
        phones_ctm=read_ctm(d / "phones.ctm") if (d / "phones.ctm").is_file() else None,
        spk2utt=opt("spk2utt", min_fields=2),
        utt2dur=opt("utt2dur", min_fields=2, max_fields=2),
    )


# ---------------------------------------------------------------------------------------------------
# wav.scp values


def is_pipe(value: str) -> bool:
    """A ``wav.scp`` value ``cmd args |`` is a command whose stdout is the audio."""
    return value.rstrip().endswith("|")


def pipe_command(value: str) -> str:
    return value.rstrip()[:-1].rstrip()


def resolve_audio_path(value: str, audio_root: Optional[PathLike]) -> str:
    """An absolute path for a ``wav.scp`` path: relative ones are taken against ``audio_root`` (the
    corpus root) or, without one, the current directory. ``normpath`` only, no symlink resolution,
    so that :func:`relative_audio_path` gives the original back."""
    if os.path.isabs(value):
        return os.path.normpath(value)
    base = os.path.abspath(audio_root) if audio_root is not None else os.getcwd()
    return os.path.normpath(os.path.join(base, value))


def relative_audio_path(path: str, audio_root: Optional[PathLike]) -> str:
    """The inverse of :func:`resolve_audio_path`: relative to ``audio_root`` when under it."""
    if audio_root is None:
        return path
    root = os.path.abspath(audio_root)
    if os.path.commonpath([root, os.path.abspath(path)]) == root:
        return os.path.relpath(path, root)
    return path


# ---------------------------------------------------------------------------------------------------
# writing


def format_time(x: float, decimals: Optional[int] = None) -> str:
    """Seconds as Kaldi writes them: with ``decimals`` fixed, else at least two decimals, at most seven
    (exact on a 16 kHz grid), no trailing zeros beyond the second: 1.5 -> ``1.50``, 0.0625 -> ``0.0625``."""
    if decimals is not None:
        s = f"{float(x):.{decimals}f}"
        return s[1:] if s.startswith("-") and float(s) == 0 else s
    x = round(float(x), 7)
    if abs(x) < 5e-8:
        x = 0.0
    s = f"{x:.7f}".rstrip("0")
    whole, frac = s.split(".")
    return f"{whole}.{frac.ljust(2, '0')}"


@dataclass
class KaldiUtterance:
    """One utterance as the writer needs it (times relative to its recording)."""

    utt_id: str
    recording_id: str
    wav: str  # the wav.scp value of its recording
    speaker: str
    start: float = 0.0
    end: Optional[float] = None
    text: Optional[str] = None
    condition: Optional[str] = None
    phones: Optional[List[CtmEntry]] = None  # relative to the utterance start
    duration: Optional[float] = None  # for utt2dur


def write_kaldi_dir(
    utterances: Iterable[KaldiUtterance], out_dir: PathLike, with_segments: Optional[bool] = None,
    fmt: Optional[KaldiFormat] = None,
) -> Path:
    """Write a data dir atomically (a temporary folder renamed onto ``out_dir``); return ``out_dir``.

    ``segments`` is written when ``with_segments`` is true or, left ``None``, when some utterance has an
    ``end`` (utterances that are whole recordings of the same id have ``end=None``). ``text``, ``utt2cond`` and ``phones.ctm`` are written when
    some utterance has the field; ``utt2dur`` when ``fmt.with_utt2dur``. ``fmt`` fixes the decimals
    of times (see :meth:`KaldiDataDir.kaldi_format`).
    """
    fmt = fmt or KaldiFormat()

    def ft(x: float, name: str) -> str:
        return format_time(x, fmt.decimals.get(name))

    utts = sorted(utterances, key=lambda u: u.utt_id)
    ids = [u.utt_id for u in utts]
    if len(set(ids)) != len(ids):
        seen, dup = set(), None
        for i in ids:
            if i in seen:
                dup = i
                break
            seen.add(i)
        raise ValueError(f"duplicate utterance id {dup!r} while writing {out_dir}")
    wav: Dict[str, str] = {}
    for u in utts:
        if wav.setdefault(u.recording_id, u.wav) != u.wav:
            raise ValueError(f"recording {u.recording_id!r} has two audio sources: {wav[u.recording_id]!r}, {u.wav!r}")
    if with_segments is None:
        with_segments = any(u.end is not None for u in utts)
    if not with_segments:
        for u in utts:
            if u.utt_id != u.recording_id or u.start != 0 or u.end is not None:
                raise ValueError(f"utterance {u.utt_id!r} is part of recording {u.recording_id!r}: "
                                 "it needs a segments file")
    spk2utt: Dict[str, List[str]] = {}
    for u in utts:
        spk2utt.setdefault(u.speaker, []).append(u.utt_id)

    files: Dict[str, List[str]] = {
        "wav.scp": [f"{r} {wav[r]}" for r in sorted(wav)],
        "utt2spk": [f"{u.utt_id} {u.speaker}" for u in utts],
        "spk2utt": [f"{s} {' '.join(spk2utt[s])}" for s in sorted(spk2utt)],
    }
    if with_segments:
        for u in utts:
            if u.end is None:
                raise ValueError(f"utterance {u.utt_id!r} has no end time for segments")
        files["segments"] = [
            f"{u.utt_id} {u.recording_id} {ft(u.start, 'segments')} {ft(u.end, 'segments')}" for u in utts
        ]
    if any(u.text is not None for u in utts):
        files["text"] = [f"{u.utt_id} {u.text}" if u.text else u.utt_id for u in utts if u.text is not None]
    if any(u.condition is not None for u in utts):
        files["utt2cond"] = [f"{u.utt_id} {u.condition}" for u in utts if u.condition is not None]
    if fmt.with_utt2dur:
        for u in utts:
            if u.duration is None:
                raise ValueError(f"utterance {u.utt_id!r} has no duration for utt2dur")
        files["utt2dur"] = [f"{u.utt_id} {ft(u.duration, 'utt2dur')}" for u in utts]
    if any(u.phones is not None for u in utts):
        files["phones.ctm"] = [
            f"{u.utt_id} {p.channel} {ft(p.start, 'phones.ctm')} {ft(p.duration, 'phones.ctm')} {p.symbol}"
            for u in utts
            if u.phones is not None
            for p in u.phones
        ]
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for name, lines in files.items():
            (tmp / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return out_dir
