"""Checks of audio files that libsndfile does not make: a WAV file cut short.

libsndfile reads a truncated WAV file without an error, shortening its ``data`` chunk to what is there
(``soundfile.info`` reports the shortened length): a copy interrupted half-way would be trained on or
decoded as if it were complete. :func:`truncation_problem` compares the ``data`` chunk's declared size
with the bytes present.
"""
from __future__ import annotations

import os
import struct
from typing import Optional

# Writers that stream to a pipe leave the size unknown: 0 or 0xFFFFFFFF (and RF64 keeps it elsewhere).
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def truncation_problem(path: str) -> Optional[str]:
    """A description if ``path`` is a RIFF/WAVE file whose data chunk is shorter than its header says."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None  # not a plain WAV file: libsndfile's own checks apply
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
                if chunk_id == b"data":
                    if chunk_size in _UNKNOWN_SIZES:
                        return None
                    have = size - (pos + 8)
                    if have < chunk_size:
                        return f"truncated: its data chunk declares {chunk_size} bytes, the file holds {have}"
                    return None
                pos += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to an even size
    except OSError:
        return None  # unreadable: reported by the reader
    return None
