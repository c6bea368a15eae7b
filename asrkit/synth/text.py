"""A seeded sentence generator: a small probabilistic grammar over an embedded vocabulary.

The vocabulary lives in ``asrkit/synth/data/*.txt`` (nouns by semantic class, verbs with the classes of
their objects and subjects, adjectives, names, adverbs), each list in frequency order; a word of rank r
in its list is drawn with weight 1/(r + 1)^zipf, so word counts follow a Zipf-like law. Templates
(past / present / future / progressive statements, there-is, copula, questions, coordination, reported
speech) with agreement, a/an, selectional restrictions (people drive vehicles and eat food, animals
chase things) and tense-matched time phrases give the text structure an n-gram LM can learn.
``vocab_size`` keeps the most frequent part of every list so that about that many word types can occur.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"

PRONOUNS_SUBJ = [("i", "1s"), ("you", "pl"), ("he", "3s"), ("she", "3s"), ("we", "pl"), ("they", "pl")]
PRONOUNS_OBJ = ["me", "you", "him", "her", "us", "them", "it"]
DET_SG = ["the", "a", "my", "this", "that", "his", "her", "your", "our", "their", "every"]
DET_PL = ["the", "some", "my", "these", "those", "two", "three", "many", "our", "their", "four", "five",
          "few", "ten", "twenty"]
DET_MASS = ["the", "some", "my", "this", "that", "our", "more", "no"]
PREPS = ["in", "at", "near", "behind", "outside", "inside", "from", "to", "across", "around"]
PREPS_THING = ["on", "under", "with", "for", "beside"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
TIME_PAST = ["yesterday", "last night", "last week", "this morning", "two days ago", "last year"] + \
    [f"on {d}" for d in DAYS] + ["after lunch", "before dinner"]
TIME_PRES = ["every day", "every morning", "every week", "on weekends", "at night", "in the evening",
             "twice a week", "most days"] + [f"on {d}s" for d in DAYS[:5]]
TIME_FUT = ["tomorrow", "next week", "tonight", "soon", "later", "next year", "after lunch"] + \
    [f"on {d}" for d in DAYS]
INTENS = ["very", "quite", "so", "too", "really"]
AN_EXCEPTIONS_A = {"one", "uniform", "university", "useful", "european", "unicorn"}
AN_EXCEPTIONS_AN = {"honest", "hour", "honour"}
DOUBLE_FINAL = {"drop", "stop", "plan", "travel", "run", "sit", "swim", "cut", "get", "shop", "put", "hug"}
CLOSED_WORDS = (
    "the a an and that some this these those every my your his her our their many few more no "
    "two three four five ten twenty i you he she we they me him us them it is are am was were will "
    "did do does not to very quite so too really there where when why said thinks thought says "
    "wants wanted want think last night week morning days ago year after before lunch dinner every day "
    "weekends at evening twice most tomorrow next tonight soon later"
).split()


def _read_sections(path: Path) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            out.setdefault(current, [])
            continue
        if current is None:
            raise ValueError(f"{path}: words before the first [section]: {line!r}")
        for w in line.split():
            if w not in out[current]:
                out[current].append(w)
    return out


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _third(verb: str) -> str:
    return _plural(verb)


def _past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    if verb in DOUBLE_FINAL:
        return verb + verb[-1] + "ed"
    return verb + "ed"


def _ing(verb: str) -> str:
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    if verb in DOUBLE_FINAL:
        return verb + verb[-1] + "ing"
    return verb + "ing"


def article(next_word: str) -> str:
    if next_word in AN_EXCEPTIONS_AN:
        return "an"
    if next_word in AN_EXCEPTIONS_A:
        return "a"
    return "an" if next_word[:1] in "aeiou" else "a"


@dataclass
class Noun:
    word: str
    plural: Optional[str]  # None: a mass noun


@dataclass
class Verb:
    base: str
    past: str
    third: str
    ing: str
    objects: Tuple[str, ...]  # noun classes; empty: intransitive
    subjects: Tuple[str, ...]  # 'p', 'a'


@dataclass
class Vocabulary:
    nouns: Dict[str, List[Noun]]
    verbs: List[Verb]
    adjectives: Dict[str, List[str]]
    names: List[str]
    adverbs: Dict[str, List[str]]


@lru_cache(maxsize=1)
def load_vocabulary(data_dir: Optional[str] = None) -> Vocabulary:
    d = Path(data_dir) if data_dir else DATA_DIR
    nouns: Dict[str, List[Noun]] = {}
    for cls, words in _read_sections(d / "nouns.txt").items():
        lst = []
        for w in words:
            base, _, pl = w.partition("/")
            lst.append(Noun(base, None if pl == "-" else (pl or _plural(base))))
        nouns[cls] = lst
    verbs = []
    seen = set()
    for ln, line in enumerate((d / "verbs.txt").read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 4:
            raise ValueError(f"{d / 'verbs.txt'}:{ln}: expected 'base past objects subjects': {line!r}")
        base, past, objs, subj = parts
        if base in seen:
            continue
        seen.add(base)
        verbs.append(Verb(base, _past(base) if past == "-" else past, _third(base), _ing(base),
                          tuple() if objs == "-" else tuple(objs.split(",")), tuple(subj.split(","))))
    names = [w for ws in _read_sections(d / "names.txt").values() for w in ws] if \
        (d / "names.txt").read_text().lstrip().startswith("[") else \
        [w for line in (d / "names.txt").read_text().splitlines() for w in line.split("#", 1)[0].split()]
    return Vocabulary(nouns, verbs, _read_sections(d / "adjectives.txt"), names,
                      _read_sections(d / "adverbs.txt"))


def _zipf_weights(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return w / w.sum()


class SentenceGenerator:
    """Draws sentences (lists of lowercase words) from the grammar with a numpy ``Generator``."""

    def __init__(self, vocab_size: int = 1500, zipf: float = 1.0, data_dir: Optional[str] = None):
        self.zipf = zipf
        self.full = load_vocabulary(data_dir)
        self.fraction = self._fit_fraction(vocab_size)
        self._truncate(self.fraction)
        self.vocabulary: Set[str] = self._forms()

    # -- vocabulary size ------------------------------------------------------------------------
    @staticmethod
    def _keep(n: int, f: float) -> int:
        return max(min(n, 3), int(math.ceil(n * f)))

    def _truncate(self, f: float) -> None:
        full = self.full
        self.nouns = {c: ws[: self._keep(len(ws), f)] for c, ws in full.nouns.items()}
        # every noun class that a kept verb needs is kept (at least 3 words), so verbs stay usable
        self.verbs = full.verbs[: self._keep(len(full.verbs), f)]
        self.adjectives = {c: ws[: self._keep(len(ws), f)] for c, ws in full.adjectives.items()}
        self.names = full.names[: self._keep(len(full.names), f)]
        self.adverbs = {c: ws[: self._keep(len(ws), f)] for c, ws in full.adverbs.items()}
        z = self.zipf
        self._w_nouns = {c: _zipf_weights(len(v), z) for c, v in self.nouns.items()}
        self._w_adj = {c: _zipf_weights(len(v), z) for c, v in self.adjectives.items()}
        self._w_names = _zipf_weights(len(self.names), z)
        self._w_adv = {c: _zipf_weights(len(v), z) for c, v in self.adverbs.items()}
        self._verbs_by_subj = {}
        for s in ("p", "a"):
            idx = [i for i, v in enumerate(self.verbs) if s in v.subjects]
            self._verbs_by_subj[s] = ([self.verbs[i] for i in idx], _zipf_weights(len(idx), z))

    def _forms(self) -> Set[str]:
        forms = set(CLOSED_WORDS) | set(DAYS) | {d + "s" for d in DAYS} | set(PREPS) | set(PREPS_THING)
        for ws in self.nouns.values():
            for n in ws:
                forms.add(n.word)
                if n.plural:
                    forms.add(n.plural)
        for v in self.verbs:
            forms.update((v.base, v.past, v.third, v.ing))
        for ws in self.adjectives.values():
            forms.update(ws)
        forms.update(self.names)
        for ws in self.adverbs.values():
            forms.update(ws)
        return forms

    def _fit_fraction(self, vocab_size: int) -> float:
        lo, hi = 0.0, 1.0
        self._truncate(1.0)
        if len(self._forms()) <= vocab_size:
            return 1.0
        for _ in range(30):
            mid = (lo + hi) / 2
            self._truncate(mid)
            if len(self._forms()) <= vocab_size:
                lo = mid
            else:
                hi = mid
        return lo

    # -- sampling helpers -----------------------------------------------------------------------
    @staticmethod
    def _pick(rng: np.random.Generator, items: Sequence, weights: Optional[np.ndarray] = None):
        if weights is None:
            return items[int(rng.integers(len(items)))]
        return items[int(rng.choice(len(items), p=weights))]

    def _adj(self, rng, cls: str) -> str:
        pool = ["any"]
        if cls in ("person", "animal"):
            pool.append("person")
        if cls in ("thing", "vehicle", "animal", "food"):
            pool.append("colour")
        if cls == "food":
            pool.append("food")
        c = self._pick(rng, pool)
        return self._pick(rng, self.adjectives[c], self._w_adj[c])

    def noun_phrase(self, rng, cls: str, role: str = "obj", plural: Optional[bool] = None,
                    allow_name: bool = True) -> Tuple[List[str], str]:
        """A noun phrase of class ``cls``; returns its words and its agreement ('3s' or 'pl')."""
        r = rng.random()
        if not allow_name:
            r = 1.0
        if cls == "person" and r < 0.22:
            return [self._pick(rng, self.names, self._w_names)], "3s"
        if cls == "person" and role == "obj" and r < 0.32:
            return [self._pick(rng, PRONOUNS_OBJ[:-1])], "3s"
        noun: Noun = self._pick(rng, self.nouns[cls], self._w_nouns[cls])
        if plural is None:
            plural = noun.plural is not None and rng.random() < 0.25
        if noun.plural is None:
            plural = False
        words: List[str] = []
        if rng.random() < 0.3:
            if rng.random() < 0.15:
                words.append(self._pick(rng, INTENS))
            words.append(self._adj(rng, cls))
        head = noun.plural if plural else noun.word
        if plural:
            det = self._pick(rng, DET_PL)
        elif noun.plural is None:
            det = self._pick(rng, DET_MASS)
        else:
            det = self._pick(rng, DET_SG)
        if det == "a":
            det = article((words or [head])[0])
        return [det] + words + [head], ("pl" if plural else "3s")

    def _subject(self, rng) -> Tuple[List[str], str, str]:
        """Words, agreement ('1s', '3s', 'pl') and subject type ('p' or 'a')."""
        r = rng.random()
        if r < 0.22:
            w, agr = self._pick(rng, PRONOUNS_SUBJ)
            return [w], agr, "p"
        if r < 0.85:
            words, agr = self.noun_phrase(rng, "person", role="subj")
            return words, agr, "p"
        words, agr = self.noun_phrase(rng, "animal", role="subj")
        return words, agr, "a"

    def _verb(self, rng, subj_type: str) -> Verb:
        verbs, w = self._verbs_by_subj[subj_type]
        return self._pick(rng, verbs, w)

    def _object(self, rng, verb: Verb) -> List[str]:
        if not verb.objects:
            return []
        cls = self._pick(rng, [c for c in verb.objects if c in self.nouns] or ["thing"])
        return self.noun_phrase(rng, cls)[0]

    def _pp(self, rng, p: float) -> List[str]:
        if rng.random() >= p:
            return []
        return [self._pick(rng, PREPS)] + self.noun_phrase(rng, "place", plural=False)[0]

    def _time(self, rng, table: List[str], p: float) -> List[str]:
        if rng.random() >= p:
            return []
        return self._pick(rng, table).split()

    def _manner(self, rng, p: float) -> List[str]:
        if rng.random() >= p:
            return []
        return [self._pick(rng, self.adverbs["manner"], self._w_adv["manner"])]

    @staticmethod
    def _be(agr: str, past: bool) -> str:
        if past:
            return "were" if agr == "pl" else "was"
        return {"1s": "am", "3s": "is"}.get(agr, "are")

    # -- templates ------------------------------------------------------------------------------
    def _past_statement(self, rng) -> List[str]:
        s, agr, st = self._subject(rng)
        v = self._verb(rng, st)
        out = s + [v.past] + self._object(rng, v) + self._pp(rng, 0.3)
        return out + (self._time(rng, TIME_PAST, 0.25) or self._manner(rng, 0.15))

    def sentence(self, rng: np.random.Generator, depth: int = 0) -> List[str]:
        """One sentence: lowercase words, no punctuation."""
        t = rng.random()
        if t < 0.28:
            out = self._past_statement(rng)
        elif t < 0.42:
            s, agr, st = self._subject(rng)
            v = self._verb(rng, st)
            out = s + [v.third if agr == "3s" else v.base] + self._object(rng, v) + self._pp(rng, 0.2) + \
                self._time(rng, TIME_PRES, 0.3)
        elif t < 0.52:
            s, agr, st = self._subject(rng)
            v = self._verb(rng, st)
            out = s + ["will", v.base] + self._object(rng, v) + self._time(rng, TIME_FUT, 0.35)
        elif t < 0.61:
            s, agr, st = self._subject(rng)
            v = self._verb(rng, st)
            past = rng.random() < 0.5
            out = s + [self._be(agr, past), v.ing] + self._object(rng, v) + self._pp(rng, 0.35)
        elif t < 0.67:
            past = rng.random() < 0.5
            np_, agr = self.noun_phrase(rng, self._pick(rng, ["thing", "animal", "person", "vehicle"]),
                                        allow_name=False)
            if agr == "3s":
                np_ = [article(np_[1])] + np_[1:]
            else:
                np_ = [self._pick(rng, ["some", "two", "three", "many", "few", "no"])] + np_[1:]
            out = ["there", self._be(agr, past)] + np_ + self._pp(rng, 0.9)
        elif t < 0.75:
            cls = self._pick(rng, ["person", "thing", "food", "place", "animal", "vehicle"])
            np_, agr = self.noun_phrase(rng, cls, role="subj")
            adv = [self._pick(rng, INTENS)] if rng.random() < 0.3 else []
            out = np_ + [self._be(agr, rng.random() < 0.5)] + adv + [self._adj(rng, cls)]
        elif t < 0.82:
            s, agr, st = self._subject(rng)
            v = self._verb(rng, st)
            wh = [self._pick(rng, ["where", "when", "why"])] if rng.random() < 0.4 else []
            out = wh + ["did"] + s + [v.base] + self._object(rng, v) + self._time(rng, TIME_PAST, 0.2)
        elif t < 0.88:
            s, agr, st = self._subject(rng)
            v1, v2 = self._verb(rng, st), self._verb(rng, st)
            out = s + [v1.past] + self._object(rng, v1) + ["and", v2.past] + self._object(rng, v2)
        elif t < 0.94:
            s, agr, st = self._subject(rng)
            if st != "p":
                return self._past_statement(rng)
            v = self._verb(rng, "p")
            want = self._pick(rng, ["want", "wanted"]) if agr != "3s" else self._pick(rng, ["wants", "wanted"])
            out = s + [want, "to", v.base] + self._object(rng, v) + self._time(rng, TIME_FUT, 0.2)
        else:
            s, agr, st = self._subject(rng)
            if st != "p" or depth > 0:
                return self._past_statement(rng)
            verb = self._pick(rng, ["said", "thought", "thinks" if agr == "3s" else "think", "knew"])
            out = s + [verb, "that"] + self.sentence(rng, depth + 1)
        return out
