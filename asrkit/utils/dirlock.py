"""One writer per output directory: ``<dir>/.lock``, held with flock(2) by the process writing it.

A second writer (a re-run started while an orphaned or still running one writes the same folder) is
refused with the holder's pid and command line named, instead of two trainers interleaving one
history. The kernel drops the lock when the holder dies however it dies, so a lock is never stale;
the file itself stays (removing it would race with a process that has it open and waits).
A lock is re-entrant within a process (one call site may lock what its caller already holds).
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, Tuple, Union

from asrkit.utils.atomic import remove_stale_temps

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]
LOCK_NAME = ".lock"

_held: Dict[Path, Tuple[int, int]] = {}  # resolved dir -> (fd, depth) held by this process


class OutputLocked(RuntimeError):
    """Another live process holds the directory's lock."""


def _describe_self() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv)}"


def holder_of(out_dir: PathLike) -> str:
    """What the lock file says about its holder ("" if nothing)."""
    try:
        return (Path(out_dir) / LOCK_NAME).read_text(errors="replace").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def locked_output(out_dir: PathLike) -> Iterator[Path]:
    """Hold ``out_dir``'s lock (created with the directory) for the duration of the block, or raise
    :class:`OutputLocked` at once, naming the holder."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    key = d.resolve()
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield d
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    fd = os.open(d / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputLocked(
            f"{d} is being written by another process ({holder_of(d) or 'holder unknown'}); refusing a "
            f"second writer: wait for it to finish or stop it (kill <pid>), then re-run") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, (_describe_self() + "\n").encode())
        _held[key] = (fd, 1)
        yield d
    finally:
        _held.pop(key, None)
        os.close(fd)  # releases the lock


def claim_output(out_dir: PathLike, prog: str, sweep: bool = True) -> None:
    """A command-line program's lock on its output directory, held until its ``main`` (decorated with
    :func:`releases_claims`) returns, or the process exits; a held lock ends the program with status
    1 and the holder named. With ``sweep``, the temporaries a killed writer left in the directory
    are removed (no live writer can own them: the lock is ours)."""
    try:
        locked_output(out_dir).__enter__()  # left by releases_claims, or at exit by the kernel
    except OutputLocked as e:
        raise SystemExit(f"{prog}: {e}") from None
    if sweep:
        removed = remove_stale_temps(out_dir)
        if removed:
            log.warning("%s: removed %d leftover(s) of a killed run in %s: %s", prog, len(removed), out_dir,
                        " ".join(removed[:10]) + (" ..." if len(removed) > 10 else ""))


def releases_claims(main: Callable) -> Callable:
    """Decorator of a ``main``: the locks it claimed are released when it returns (so that a test
    calling it in-process, then a subprocess on the same folder, is not refused)."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        before = set(_held)
        try:
            return main(*args, **kwargs)
        finally:
            for key in set(_held) - before:
                fd, _ = _held.pop(key)
                os.close(fd)
    return wrapper
