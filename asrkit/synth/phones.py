"""espeak-ng phoneme mnemonics → phone symbols that are safe for Kaldi, and pause detection."""
from __future__ import annotations

import string

# kept as they are; anything else (e.g. '#', ';', '[', '?', '/') becomes %XX (hex), which is
# injective because '%' itself is escaped; the result has no whitespace and never starts with '#'.
_SAFE = set(string.ascii_letters + string.digits + "@:-")
STRESS_MARKS = "'," + "\u02c8\u02cc"


def is_pause(mnemonic: str) -> bool:
    """espeak's pauses (``_``, ``_:``, ``_!`` ...) and empty events are silence, not phones."""
    m = mnemonic.strip()
    return not m or m.startswith("_")


def to_kaldi_phone(mnemonic: str) -> str:
    """Map an espeak mnemonic to a Kaldi-safe phone symbol (stress marks removed)."""
    m = "".join(c for c in mnemonic.strip() if c not in STRESS_MARKS)
    if not m:
        raise ValueError(f"empty phoneme mnemonic {mnemonic!r}")
    out = "".join(c if c in _SAFE else "%{:02X}".format(ord(c)) for c in m)
    if out == "<eps>" or out.startswith("#"):  # cannot happen with the escaping above
        raise ValueError(f"unsafe phone symbol {out!r} from {mnemonic!r}")
    return out


def from_kaldi_phone(symbol: str) -> str:
    """The inverse of :func:`to_kaldi_phone` (without the stress marks)."""
    out, i = [], 0
    while i < len(symbol):
        if symbol[i] == "%":
            out.append(chr(int(symbol[i + 1:i + 3], 16)))
            i += 3
        else:
            out.append(symbol[i])
            i += 1
    return "".join(out)
