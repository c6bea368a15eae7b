"""Validation issues, the report of what was skipped, and the error raised in ``on_error="fail"`` mode.

Every problem found in a data dir is a :class:`ValidationIssue` naming the utterance, the file (with the
line where it applies) and a reason from :data:`REASONS`. In ``fail`` mode (the default) all problems are
collected first and raised together as a :class:`DataValidationError`; in ``skip`` mode the utterances are
dropped and counted per reason in a :class:`ValidationReport`, written next to the manifests.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

from asrkit.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]

REASONS: Dict[str, str] = {
    "non_utf8": "line is not valid UTF-8",
    "malformed_line": "malformed line",
    "duplicate_id": "id appears more than once",
    "missing_audio": "audio missing",
    "unreadable_audio": "audio cannot be read",
    "empty_audio": "audio has 0 samples",
    "truncated": "audio data shorter than its header says",
    "multi_channel": "audio has several channels (take one: --channel N, or average them: --downmix)",
    "sample_rate_mismatch": "sample rate differs from the expected one",
    "missing_transcript": "no transcript (labelled set)",
    "empty_transcript": "empty transcript (labelled set)",
    "missing_utt2spk": "no utt2spk entry",
    "bad_segment": "segment outside its recording",
    "too_short": "shorter than the minimum duration",
}

ON_ERROR = ("fail", "skip")
DEFAULT_SAMPLE_RATE = 16000
DEFAULT_MIN_DURATION = 0.1  # seconds; shorter utterances give too few frames to align


@dataclass(frozen=True)
class ValidationIssue:
    utt_id: str
    reason: str  # a key of REASONS
    file: str  # "path" or "path:line"
    detail: str = ""

    def message(self) -> str:
        text = REASONS.get(self.reason, self.reason)
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.file}: utterance '{self.utt_id}': {text} [{self.reason}]{detail}"


class DataValidationError(ValueError):
    """Raised in fail mode; ``issues`` holds every problem found."""

    def __init__(self, issues: List[ValidationIssue], source: str, max_shown: int = 20):
        self.issues = issues
        lines = [i.message() for i in issues[:max_shown]]
        more = f"\n  ... and {len(issues) - max_shown} more" if len(issues) > max_shown else ""
        counts = ", ".join(f"{r}={n}" for r, n in sorted(Counter(i.reason for i in issues).items()))
        super().__init__(
            f"{len(issues)} problem(s) in {source} ({counts}); fix them, or pass on_error='skip' "
            f"(--on-error skip) to skip and count them:\n  " + "\n  ".join(lines) + more
        )


@dataclass
class ValidationReport:
    """What validation of one data dir (or one set) found: skipped utterances and their reasons."""

    source: str
    set_name: str = ""
    on_error: str = "fail"
    num_total: int = 0
    skipped: List[ValidationIssue] = field(default_factory=list)  # one issue per skipped utterance
    notes: List[str] = field(default_factory=list)  # things worth knowing that skipped nothing

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    @property
    def num_kept(self) -> int:
        return self.num_total - self.num_skipped

    def counts(self) -> Dict[str, int]:
        return dict(sorted(Counter(i.reason for i in self.skipped).items()))

    def summary(self) -> str:
        counts = ", ".join(f"{r}={n}" for r, n in self.counts().items())
        name = f" of {self.set_name}" if self.set_name else ""
        return (
            f"validation{name} ({self.source}): {self.num_total} utterances, {self.num_kept} kept, "
            f"{self.num_skipped} skipped" + (f" ({counts})" if counts else "")
        )

    def to_text(self) -> str:
        out = [
            f"# validation report: {self.source}" + (f" (set {self.set_name})" if self.set_name else ""),
            f"# on_error: {self.on_error}",
            f"# utterances: total {self.num_total}, kept {self.num_kept}, skipped {self.num_skipped}",
            "# skipped per reason:",
        ]
        out += [f"#   {r} {n}" for r, n in self.counts().items()] or ["#   (none)"]
        out += [f"# note: {n}" for n in self.notes]
        out.append("# utt_id<TAB>reason<TAB>file[:line]<TAB>detail")
        for i in sorted(self.skipped, key=lambda i: (i.utt_id, i.reason)):
            out.append(f"{i.utt_id}\t{i.reason}\t{i.file}\t{i.detail}")
        return "\n".join(out) + "\n"

    def write(self, path: PathLike) -> Path:
        atomic_write_text(path, self.to_text())
        return Path(path)

    def subset(self, utt_ids: Iterable[str], set_name: str, num_total: int) -> "ValidationReport":
        """The part of this report about ``utt_ids`` (used when one corpus is split into sets)."""
        keep = set(utt_ids)
        return ValidationReport(
            source=self.source,
            set_name=set_name,
            on_error=self.on_error,
            num_total=num_total,
            skipped=[i for i in self.skipped if i.utt_id in keep],
            notes=list(self.notes),
        )


def read_report_counts(path: PathLike) -> Dict[str, int]:
    """Per-reason counts from a written report (for tests and summaries)."""
    counts: Dict[str, int] = {}
    in_counts = False
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("# skipped per reason"):
            in_counts = True
            continue
        if in_counts and line.startswith("#   ") and "(none)" not in line:
            reason, n = line[4:].split()
            counts[reason] = int(n)
        elif in_counts:
            in_counts = line.startswith("#   ")
    return counts


class EmptySetError(ValueError):
    """No utterance of a set is valid (even under on_error="skip": an empty set is never a result)."""


def check_not_empty(report: ValidationReport, report_path: Optional[PathLike] = None) -> None:
    if report.num_kept > 0:
        return
    counts = ", ".join(f"{r}={n}" for r, n in report.counts().items()) or "the data dir lists none"
    name = f"set {report.set_name}" if report.set_name else report.source
    raise EmptySetError(
        f"{name}: no valid utterance ({report.num_total} in {report.source}, all skipped: {counts})"
        + (f"; see {report_path}" if report_path is not None else ""))


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, not {on_error!r}")
    return on_error


def finish(
    issues: List[ValidationIssue],
    report: ValidationReport,
    report_path: Optional[PathLike] = None,
) -> ValidationReport:
    """Fail with every issue, or record one issue per skipped utterance; log the one-line summary."""
    first: Dict[str, ValidationIssue] = {}
    for i in issues:
        first.setdefault(i.utt_id, i)
    if report.on_error == "fail" and issues:
        report.skipped = list(first.values())
        report.notes.append("validation FAILED (on_error=fail): nothing was written; the utterances below "
                            "are the ones with problems")
        if report_path is not None:
            report.write(report_path)
        raise DataValidationError(issues, report.source)
    report.skipped = list(first.values())
    log.info(report.summary())
    if report_path is not None:
        report.write(report_path)
    return report
