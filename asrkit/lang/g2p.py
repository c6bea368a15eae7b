"""Grapheme-to-phoneme conversion with espeak-ng, mapped to the lexicon's phone set.

All words go to one ``espeak-ng -q -x --sep=_ -v en-us`` process, one word per paragraph (a blank line
between words), so each word comes back on its own output line. Should the line count not match (it
has not been seen), the words are converted one process call each.

Phone sets:

- ``espeak``: espeak-ng's own phoneme symbols with the stress marks (``'``, ``,``) removed;
- ``cmu``: the 39 ARPAbet phones of CMUdict, through :data:`ESPEAK_TO_ARPABET`;
- ``cmu-stressed``: the same with vowel stress 1 (after ``'``), 2 (after ``,``) or 0.

The mapping table was checked against CMUdict on 3,000 random CMUdict words (see
``tests/lang/test_g2p.py`` and the report of the lang stage): most differences are real dialect or
reduction differences (schwa vs. full vowel), not mapping errors.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from asrkit.lang.lexicon import CMU_PHONES, CMU_PHONES_STRESSED, Lexicon, LexiconError

log = logging.getLogger(__name__)

#: espeak-ng (en-us) phoneme → ARPAbet phones (stress-free). An empty tuple drops the symbol.
#: ``r-`` (linking r) is dropped after a phone that already ends in R/ER (see :func:`espeak_to_arpabet`).
ESPEAK_TO_ARPABET: Dict[str, Tuple[str, ...]] = {
    # vowels and diphthongs
    "a": ("AE",), "aa": ("AE",), "a#": ("AH",), "a2": ("AH",),
    "A": ("AA",), "A:": ("AA",), "A@": ("AA", "R"), "A#": ("AA",), "0": ("AA",), "0#": ("AA",),
    "O": ("AO",), "O:": ("AO",), "O2": ("AO",), "O@": ("AO", "R"), "o@": ("AO", "R"), "o": ("OW",),
    "OI": ("OY",), "aI": ("AY",), "aI@": ("AY", "ER"), "aI3": ("AY", "ER"), "aU": ("AW",),
    "aU@": ("AW", "ER"), "@": ("AH",), "@-": ("AH",), "@2": ("AH",), "@5": ("AH",), "@L": ("AH", "L"),
    "3": ("ER",), "3:": ("ER",), "3:r": ("ER",), "@r": ("ER",),
    "e@": ("EH", "R"), "E": ("EH",), "E2": ("EH",), "E#": ("EH",), "e": ("EY",), "eI": ("EY",),
    "i": ("IY",), "i:": ("IY",), "i@": ("IH", "R"), "i@3": ("IH", "R"), "I": ("IH",), "I2": ("IH",),
    "I#": ("IH",), "I2#": ("IH",), "U": ("UH",), "U@": ("UH", "R"), "u:": ("UW",), "u": ("UW",),
    "u@": ("UH", "R"), "V": ("AH",), "oU": ("OW",), "oU#": ("OW",),
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",), "f": ("F",),
    "v": ("V",), "s": ("S",), "z": ("Z",), "h": ("HH",), "m": ("M",), "n": ("N",), "l": ("L",),
    "w": ("W",), "W": ("W",), "r": ("R",), "r-": ("R",), "j": ("Y",), "T": ("TH",), "D": ("DH",),
    "S": ("SH",), "Z": ("ZH",), "N": ("NG",), "tS": ("CH",), "dZ": ("JH",), "t#": ("T",), "t2": ("T",),
    "d#": ("D",), "?": ("T",), "x": ("K",), "C": ("HH",), "n-": ("AH", "N"), "m-": ("AH", "M"),
    "l-": ("AH", "L"), "z#": ("Z",), "s#": ("S",),
    # markers without a sound of their own
    ";": (), "#": (), "-": (), "%": (), "=": (), "|": (), "||": (),
}

_STRESS_MARKS = "'," + "%="


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def _run_espeak(words: Sequence[str], voice: str) -> List[str]:
    if not have_espeak():
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng): no G2P available")
    inp = "".join(w.lower() + "\n\n" for w in words)
    proc = subprocess.run(
        ["espeak-ng", "-q", "-x", "--sep=_", "-v", voice],
        input=inp, capture_output=True, text=True, encoding="utf-8",
    )
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def espeak_phonemes(words: Sequence[str], voice: str = "en-us") -> List[List[str]]:
    """espeak-ng phoneme tokens of each word, stress marks kept (``["h", "@", "l", "'oU"]``)."""
    words = list(words)
    if not words:
        return []
    lines = _run_espeak(words, voice)
    if len(lines) != len(words):
        log.warning("espeak-ng gave %d lines for %d words; converting one word per call", len(lines), len(words))
        lines = [" ".join(_run_espeak([w], voice)) for w in words]
    out = []
    for line in lines:
        toks = [t for chunk in line.split() for t in chunk.split("_") if t]
        out.append(toks)
    return out


def _split_stress(tok: str) -> Tuple[int, str]:
    stress = -1
    while tok and tok[0] in _STRESS_MARKS:
        stress = max(stress, 1 if tok[0] == "'" else 2 if tok[0] == "," else 0)
        tok = tok[1:]
    return stress, tok


def espeak_to_arpabet(tokens: Sequence[str], stressed: bool = False, word: str = "?") -> List[str]:
    """Map one word's espeak-ng tokens to ARPAbet. Unknown symbols are dropped with a warning."""
    out: List[str] = []
    pending_stress = -1
    for tok in tokens:
        stress, sym = _split_stress(tok)
        if stress >= 0:
            pending_stress = stress
        if not sym:
            continue
        if sym not in ESPEAK_TO_ARPABET:
            log.warning("espeak-ng symbol %r of word %r has no ARPAbet mapping; dropped", sym, word)
            continue
        phones = ESPEAK_TO_ARPABET[sym]
        if sym == "r-" and out and out[-1].rstrip("012") in ("R", "ER"):
            continue
        first_vowel = True
        for ph in phones:
            if out and ph == "R" and out[-1].rstrip("012") == "R":
                continue  # "i@3 r" → IH R, not IH R R
            if ph in ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"):
                if stressed:
                    s = pending_stress if (first_vowel and pending_stress >= 0) else 0
                    ph = f"{ph}{s}"
                    if first_vowel:
                        pending_stress = -1
                first_vowel = False
            out.append(ph)
    return out


def espeak_to_symbols(tokens: Sequence[str]) -> List[str]:
    """espeak-ng's own symbols with stress marks removed (the ``espeak`` phone set)."""
    out = []
    for tok in tokens:
        _, sym = _split_stress(tok)
        if sym:
            out.append(sym)
    return out


def g2p(
    words: Sequence[str],
    phone_set: str = "cmu",
    voice: str = "en-us",
    allowed_phones: Optional[Iterable[str]] = None,
) -> Lexicon:
    """Pronounce ``words`` with espeak-ng in one process call and map them to ``phone_set``.

    ``allowed_phones`` (default: the named set's phones; no check for ``espeak``) is checked: a word
    whose pronunciation has phones outside it, or that comes back empty, raises :class:`LexiconError`.
    """
    words = list(dict.fromkeys(words))
    lex = Lexicon()
    if not words:
        return lex
    if phone_set == "cmu":
        default_allowed: Optional[Iterable[str]] = CMU_PHONES
    elif phone_set in ("cmu-stressed", "cmu_stressed"):
        default_allowed = CMU_PHONES_STRESSED
    elif phone_set == "espeak":
        default_allowed = None
    else:
        raise ValueError(f"G2P phone set must be cmu, cmu-stressed or espeak, not {phone_set!r}")
    allowed = set(allowed_phones) if allowed_phones is not None else (set(default_allowed) if default_allowed else None)
    for word, toks in zip(words, espeak_phonemes(words, voice)):
        if phone_set == "espeak":
            pron = espeak_to_symbols(toks)
        else:
            pron = espeak_to_arpabet(toks, stressed=phone_set != "cmu", word=word)
        if not pron:
            raise LexiconError(f"G2P (espeak-ng): no phones for word {word!r} (espeak gave {toks!r})")
        if allowed is not None:
            bad = sorted({p for p in pron if p not in allowed})
            if bad:
                raise LexiconError(
                    f"G2P (espeak-ng): word {word!r} → {' '.join(pron)} has phones outside the phone set: "
                    f"{' '.join(bad)}"
                )
        lex.add(word, pron)
    return lex
