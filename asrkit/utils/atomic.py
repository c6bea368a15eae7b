"""Outputs that never exist half-written: write to a temporary name, rename when complete."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Works for files and directories. The temporary name keeps the final suffixes (``x.jsonl.gz`` →
    ``x.tmp123.jsonl.gz``) so libraries that pick a format from the extension still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.tmp", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp_name)  # the caller creates a file or a directory there
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_path: nothing was written to {tmp} for {path}")
        if path.is_dir() and not tmp.is_dir():
            raise IsADirectoryError(f"{path} is a directory; refusing to replace it with a file")
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


# atomic_path's temporary names: "." + stem + ".tmp" + mkstemp's 8 random characters + the suffixes
TEMP_NAME_RE = re.compile(r"^\..+\.tmp[a-z0-9_]{8}(\.[^/]*)?$")


def remove_stale_temps(folder: PathLike) -> list:
    """Remove what atomic_path left in ``folder`` when its process was killed (a temporary file or
    directory, e.g. compute_features' ``.storage_<set>.tmpXXXXXXXX`` or a GMM's 0-byte
    ``.N.tmpXXXXXXXX.mdl``); returns their names. Only for a caller that holds the folder's lock
    (asrkit.utils.dirlock): another live writer's temporaries would go too."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.iterdir()):
        if TEMP_NAME_RE.match(p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def done_marker(path: PathLike) -> Path:
    """The ``.done`` marker that says ``path`` (a file or a directory) was completed."""
    path = Path(path)
    return path.parent / f".{path.name}.done"


def is_done(path: PathLike) -> bool:
    return done_marker(path).exists() and Path(path).exists()


def mark_done(path: PathLike) -> None:
    done_marker(path).touch()


def up_to_date(path: PathLike, inputs=()) -> bool:
    """``path`` is done and its marker is newer than every input that exists (make's rule, as in
    Kaldi's mkgraph.sh): a stage can skip it."""
    if not is_done(path):
        return False
    t = done_marker(path).stat().st_mtime
    return all(Path(f).stat().st_mtime <= t for f in inputs if f is not None and Path(f).exists())
