"""Download a file with resume and an optional checksum; extract a tar archive once, atomically.

``download_url`` writes to ``<dest>.part`` and renames it when complete; a re-run continues a partial
download (HTTP ``Range``; for servers and ``file://`` URLs that ignore it, the bytes already held are
read past) and skips a finished one (done marker). ``extract_tar`` extracts into a temporary folder,
moves the members into place and leaves a done marker, so a re-run skips it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import List, Optional, Union

from asrkit.utils.atomic import atomic_write_text, done_marker, is_done, mark_done

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]

CHUNK = 1 << 20


class ChecksumError(ValueError):
    pass


def file_digest(path: PathLike, algorithm: str = "md5", chunk: int = CHUNK) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def md5sum(path: PathLike, chunk: int = CHUNK) -> str:
    return file_digest(path, "md5", chunk)


def _expected(md5: Optional[str], sha256: Optional[str]) -> List[tuple]:
    return [(a, v.lower()) for a, v in (("md5", md5), ("sha256", sha256)) if v]


def _mismatch(path: Path, expected: List[tuple]) -> Optional[str]:
    """The first checksum of ``expected`` that ``path`` fails, as a message; None when all match."""
    for algorithm, want in expected:
        log.info(f"checking the {algorithm} of {path} ({path.stat().st_size / 1e6:.0f} MB)")
        got = file_digest(path, algorithm)
        if got != want:
            return f"{algorithm} is {got}, expected {want}"
    return None


def url_basename(url: str) -> str:
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise ValueError(f"cannot name the file of URL {url!r}: pass a destination file")
    return name


def download_url(url: str, dest: PathLike, md5: Optional[str] = None, timeout: float = 60.0,
                 progress: bool = True, sha256: Optional[str] = None) -> Path:
    """Download ``url`` to the file ``dest`` (resuming ``dest.part``), check ``md5`` / ``sha256`` if given.

    Returns ``dest``. Skips the download when ``dest`` has its done marker (and, given checksums, those
    checksums). A checksum mismatch removes the downloaded file and raises :class:`ChecksumError`.
    """
    dest = Path(dest)
    expected = _expected(md5, sha256)
    if is_done(dest) and (not expected or _mismatch(dest, expected) is None):
        log.info(f"{dest} is already downloaded: skipping")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    t0 = time.time()
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        status = getattr(resp, "status", None) or resp.getcode()
        length = resp.headers.get("Content-Length")
        total = int(length) if length is not None and length.isdigit() else None
        if offset and status == 206:
            log.info(f"resuming {url} at byte {offset}")
            if total is not None:
                total += offset
        elif offset:
            # the server (or a file:// URL) ignored the range: read past the bytes already held
            log.info(f"resuming {url} at byte {offset} (range not supported: skipping the first bytes)")
            to_skip = offset
            while to_skip:
                block = resp.read(min(CHUNK, to_skip))
                if not block:
                    raise IOError(f"{part} ({offset} bytes) is longer than {url}: delete it and retry")
                to_skip -= len(block)
        mode = "ab" if offset else "wb"
        done = offset
        last_log = time.time()
        with open(part, mode) as f:
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                f.write(block)
                done += len(block)
                if progress and time.time() - last_log > 10:
                    pct = f" ({100 * done / total:.0f}%)" if total else ""
                    log.info(f"downloading {url}: {done / 1e6:.1f} MB{pct}")
                    last_log = time.time()
    if total is not None and done != total:
        raise IOError(f"download of {url} stopped at {done} of {total} bytes; re-run to resume ({part})")
    bad = _mismatch(part, expected) if expected else None
    if bad:
        part.unlink()
        raise ChecksumError(f"{url}: {bad}; removed {part}, re-run to retry")
    os.replace(part, dest)
    mark_done(dest)
    elapsed = time.time() - t0
    log.info(f"downloaded {url} -> {dest}: {(done - offset) / 1e6:.1f} MB in {elapsed:.1f} s "
             f"({(done - offset) / 1e6 / max(elapsed, 1e-9):.1f} MB/s)")
    return dest


def _extract_record(archive: Path, dest_dir: Path) -> Path:
    return dest_dir / f"{archive.name}.extracted"


def extract_tar(archive: PathLike, dest_dir: PathLike) -> List[Path]:
    """Extract a tar archive (any compression) into ``dest_dir``; return its top-level members.

    Members go to a temporary folder first and are moved into place only when all are extracted;
    a record ``<archive>.extracted`` listing them, with its done marker, makes a re-run skip the work.
    Unsafe members (absolute paths, ``..``, devices) are refused (tarfile's ``data`` filter).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    record = _extract_record(archive, dest_dir)
    if is_done(record):
        members = [dest_dir / m for m in record.read_text(encoding="utf-8").split("\n") if m]
        if all(m.exists() for m in members):
            log.info(f"{archive} is already extracted in {dest_dir}: skipping")
            return members
    dest_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.extract.", dir=dest_dir))
    try:
        with tarfile.open(archive) as tar:
            try:
                tar.extractall(tmp, filter="data")
            except TypeError:  # Python without extraction filters
                tar.extractall(tmp)
        tops = sorted(os.listdir(tmp))
        for name in tops:
            target = dest_dir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(tmp / name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_text(record, "".join(t + "\n" for t in tops))
    mark_done(record)
    log.info(f"extracted {archive} into {dest_dir} ({len(tops)} top-level entries) in {time.time() - t0:.1f} s")
    return [dest_dir / t for t in tops]


def download_and_extract(url: str, dest_dir: PathLike, md5: Optional[str] = None,
                         extract: bool = True) -> List[Path]:
    """Download ``url`` into ``dest_dir`` and, if it is a tar archive and ``extract``, extract it there."""
    dest_dir = Path(dest_dir)
    archive = download_url(url, dest_dir / url_basename(url), md5=md5)
    if extract and any(archive.name.endswith(s) for s in (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return extract_tar(archive, dest_dir)
    return [archive]


__all__ = ["ChecksumError", "download_and_extract", "download_url", "done_marker", "extract_tar", "file_digest",
           "md5sum"]
