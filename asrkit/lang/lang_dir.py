"""Kaldi dict dirs (``data/local/dict``) and lang dirs (``data/lang``, ``data/lang_senone``).

What is written follows Kaldi's ``utils/prepare_lang.sh`` with ``--position-dependent-phones false``
(word-position-independent phones: no ``_B/_I/_E/_S``):

- ``phones.txt``: ``<eps>`` 0, the silence phones (``SIL``, ``SPN``), the non-silence phones (sorted),
  then the disambiguation symbols ``#0 … #N``. ``N`` is one more than the largest ``#k`` that
  :func:`add_lex_disambig` needed; the extra one sits on the silence arc of ``L_disambig.fst``
  (Kaldi's ``--sil-disambig``).
- ``words.txt``: ``<eps>`` 0, the words (sorted, ``<UNK>`` among them), then ``#0``, ``<s>``, ``</s>``.
- ``oov.txt``/``oov.int``: ``<UNK>`` (pronounced ``SPN``).
- ``phones/{silence,nonsilence,optional_silence,disambig,context_indep}.{txt,int}``, ``phones/sets``,
  ``phones/roots``, ``phones/extra_questions``, ``phones/wdisambig*``.
- ``L.fst`` and ``L_disambig.fst`` (kaldifst binary, olabel-sorted) with optional silence between
  words and at the start (probability ``sil_prob``, default 0.5), as Kaldi's ``make_lexicon_fst.py``;
  ``L_disambig.fst`` also has the ``#k`` symbols on the pronunciations and the ``#0:#0`` self-loops
  that let G's back-off symbol through (Kaldi's ``fstaddselfloops``).
- ``topo``: three-state (``data/lang``) or one-state (``data/lang_senone``), see
  :mod:`asrkit.hmm.topology`.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from asrkit.lang.lexicon import (
    SIL_PHONE, SPN_PHONE, UNK_WORD, Lexicon, LexiconError, Pron, read_lexicon,
)
from asrkit.utils.atomic import atomic_path, atomic_write_text, is_done, mark_done

log = logging.getLogger(__name__)

PathLike = Union[str, Path]


# ------------------------------------------------------------------------------------------------ dict


@dataclass
class DictDir:
    """Kaldi's ``data/local/dict``: a lexicon with the silence phones described."""

    lexicon: Lexicon
    silence_phones: List[str] = field(default_factory=lambda: [SIL_PHONE, SPN_PHONE])
    optional_silence: str = SIL_PHONE
    nonsilence_phones: Optional[List[str]] = None  # default: every other phone used by the lexicon
    oov_word: str = UNK_WORD

    def __post_init__(self) -> None:
        if self.optional_silence not in self.silence_phones:
            raise LexiconError(f"optional silence {self.optional_silence!r} is not a silence phone")
        if self.oov_word not in self.lexicon:
            self.lexicon.add(self.oov_word, [SPN_PHONE if SPN_PHONE in self.silence_phones else self.optional_silence])
        used = self.lexicon.phones()
        if self.nonsilence_phones is None:
            self.nonsilence_phones = sorted(used - set(self.silence_phones))
        overlap = set(self.nonsilence_phones) & set(self.silence_phones)
        if overlap:
            raise LexiconError(f"phones both silence and non-silence: {' '.join(sorted(overlap))}")
        self.lexicon.validate(self.phones(), source="dict")

    def phones(self) -> List[str]:
        return list(self.silence_phones) + list(self.nonsilence_phones)

    def write(self, out_dir: PathLike) -> None:
        out_dir = Path(out_dir)
        with atomic_path(out_dir) as tmp:
            tmp.mkdir(parents=True)
            (tmp / "lexicon.txt").write_text(self.lexicon.to_text(), encoding="utf-8")
            (tmp / "silence_phones.txt").write_text("".join(p + "\n" for p in self.silence_phones), encoding="utf-8")
            (tmp / "nonsilence_phones.txt").write_text(
                "".join(p + "\n" for p in self.nonsilence_phones), encoding="utf-8"
            )
            (tmp / "optional_silence.txt").write_text(self.optional_silence + "\n", encoding="utf-8")
            (tmp / "extra_questions.txt").write_text("", encoding="utf-8")

    @classmethod
    def read(cls, in_dir: PathLike) -> "DictDir":
        in_dir = Path(in_dir)

        def lines(name: str) -> List[str]:
            path = in_dir / name
            if not path.exists():
                raise FileNotFoundError(f"dict dir {in_dir}: {name} is missing")
            return [x.split()[0] for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]

        sil = lines("silence_phones.txt")
        nonsil = lines("nonsilence_phones.txt")
        opt = lines("optional_silence.txt")[0]
        lex = read_lexicon(in_dir / "lexicon.txt", phone_set=sil + nonsil)
        return cls(lex, silence_phones=sil, optional_silence=opt, nonsilence_phones=nonsil)


# -------------------------------------------------------------------------------------- disambiguation


def add_lex_disambig(entries: Sequence[Tuple[str, Pron]]) -> Tuple[List[Tuple[str, Pron]], int]:
    """Kaldi's ``add_lex_disambig.pl``: append ``#1``, ``#2``… to a pronunciation that another word
    shares (homophones) or that is a proper prefix of another pronunciation.

    Returns the new entries and the largest disambiguation index used (0 if none).
    """
    count: Dict[Pron, int] = {}
    prefixes: Set[Pron] = set()
    for _, pron in entries:
        count[pron] = count.get(pron, 0) + 1
        for i in range(1, len(pron)):
            prefixes.add(pron[:i])
    last: Dict[Pron, int] = {}
    out = []
    max_disambig = 0
    for word, pron in entries:
        if not pron:
            raise LexiconError(f"word {word!r} has an empty pronunciation")
        if pron in prefixes or count[pron] > 1:
            k = last.get(pron, 0) + 1
            last[pron] = k
            max_disambig = max(max_disambig, k)
            out.append((word, pron + (f"#{k}",)))
        else:
            out.append((word, pron))
    return out, max_disambig


# ------------------------------------------------------------------------------------------- symbols


class SymbolTable:
    """A Kaldi symbol table (``sym id`` lines) with both directions."""

    def __init__(self, symbols: Sequence[str]):
        self.symbols = list(symbols)
        self.ids = {s: i for i, s in enumerate(self.symbols)}
        if len(self.ids) != len(self.symbols):
            dup = sorted({s for s in self.symbols if self.symbols.count(s) > 1})
            raise LexiconError(f"duplicate symbols: {' '.join(dup[:10])}")

    def __getitem__(self, sym: str) -> int:
        return self.ids[sym]

    def __contains__(self, sym: str) -> bool:
        return sym in self.ids

    def __len__(self) -> int:
        return len(self.symbols)

    def to_text(self) -> str:
        return "".join(f"{s} {i}\n" for i, s in enumerate(self.symbols))

    @classmethod
    def read(cls, path: PathLike) -> "SymbolTable":
        pairs = []
        for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            f = line.split()
            if not f:
                continue
            if len(f) != 2 or not f[1].isdigit():
                raise LexiconError(f"{path}:{lineno}: not a 'symbol id' line: {line!r}")
            pairs.append((int(f[1]), f[0]))
        pairs.sort()
        if [i for i, _ in pairs] != list(range(len(pairs))):
            raise LexiconError(f"{path}: ids are not 0..{len(pairs) - 1}")
        return cls([s for _, s in pairs])


def make_phone_table(dict_dir: DictDir, num_disambig: int) -> SymbolTable:
    return SymbolTable(["<eps>"] + dict_dir.phones() + [f"#{k}" for k in range(num_disambig + 1)])


def make_word_table(words: Iterable[str]) -> SymbolTable:
    return SymbolTable(["<eps>"] + sorted(set(words)) + ["#0", "<s>", "</s>"])


# ------------------------------------------------------------------------------------------ lexicon fst


def lexicon_fst_text(
    entries: Sequence[Tuple[str, Pron]],
    phones: SymbolTable,
    words: SymbolTable,
    sil_prob: float = 0.5,
    sil_phone: Optional[str] = SIL_PHONE,
    sil_disambig: Optional[str] = None,
) -> str:
    """OpenFst text of L as Kaldi's ``make_lexicon_fst.py`` writes it (integer labels).

    With ``sil_prob`` > 0: a start state that goes to the loop state with cost -log(1-p) or through
    an optional silence with cost -log(p); every word ends either in the loop state (cost -log(1-p))
    or in the silence state (cost -log(p)). With ``sil_prob`` = 0 there is no silence at all.
    """
    lines: List[str] = []
    eps = 0

    def arc(src: int, dst: int, ph: str, wd: Optional[str], cost: float) -> None:
        il = phones[ph] if ph != "<eps>" else eps
        ol = words[wd] if wd else eps
        lines.append(f"{src} {dst} {il} {ol} {cost:.6g}" if cost else f"{src} {dst} {il} {ol}")

    if sil_prob > 0 and sil_phone:
        if sil_prob >= 1:
            raise ValueError("sil_prob must be below 1")
        sil_cost = -math.log(sil_prob)
        no_sil_cost = -math.log(1.0 - sil_prob)
        start, loop, sil = 0, 1, 2
        nxt = 3
        arc(start, loop, "<eps>", None, no_sil_cost)
        arc(start, sil, "<eps>", None, sil_cost)
        if sil_disambig is None:
            arc(sil, loop, sil_phone, None, 0.0)
        else:
            dis = nxt
            nxt += 1
            arc(sil, dis, sil_phone, None, 0.0)
            arc(dis, loop, sil_disambig, None, 0.0)
        for word, pron in entries:
            cur = loop
            for i, ph in enumerate(pron[:-1]):
                arc(cur, nxt, ph, word if i == 0 else None, 0.0)
                cur = nxt
                nxt += 1
            last = pron[-1]
            wd = word if len(pron) == 1 else None
            arc(cur, loop, last, wd, no_sil_cost)
            arc(cur, sil, last, wd, sil_cost)
        lines.append(f"{loop}")
    else:
        loop = 0
        nxt = 1
        for word, pron in entries:
            cur = loop
            for i, ph in enumerate(pron[:-1]):
                arc(cur, nxt, ph, word if i == 0 else None, 0.0)
                cur = nxt
                nxt += 1
            arc(cur, loop, pron[-1], word if len(pron) == 1 else None, 0.0)
        lines.append(f"{loop}")
    return "\n".join(lines) + "\n"


def make_lexicon_fst(
    entries: Sequence[Tuple[str, Pron]],
    phones: SymbolTable,
    words: SymbolTable,
    sil_prob: float = 0.5,
    sil_phone: Optional[str] = SIL_PHONE,
    sil_disambig: Optional[str] = None,
    add_disambig_self_loops: bool = False,
):
    """L as a kaldifst ``StdVectorFst``, olabel-sorted (``#0:#0`` self-loops with ``add_disambig_self_loops``)."""
    from asrkit.fst import kaldifst

    fst = kaldifst.compile(lexicon_fst_text(entries, phones, words, sil_prob, sil_phone, sil_disambig))
    if add_disambig_self_loops:
        kaldifst.add_self_loops(fst, [phones["#0"]], [words["#0"]])
    kaldifst.arcsort(fst, sort_type="olabel")
    return fst


def fst_paths(fst, max_arcs: int = 50) -> List[Tuple[Tuple[int, ...], Tuple[int, ...], float]]:
    """Every successful path of an acyclic FST (or the paths of at most ``max_arcs`` arcs of a cyclic
    one) as (input labels, output labels, total cost), epsilons (0) removed."""
    from asrkit.fst import kaldifst  # noqa: F401  (fst objects come from kaldifst)

    arcs: Dict[int, List[Tuple[int, int, int, float]]] = {}
    finals: Dict[int, float] = {}
    for line in fst.to_str(show_weight_one=True).splitlines():
        f = line.split()
        if not f:
            continue
        if len(f) <= 2:
            finals[int(f[0])] = float(f[1]) if len(f) == 2 else 0.0
        else:
            arcs.setdefault(int(f[0]), []).append((int(f[1]), int(f[2]), int(f[3]), float(f[4]) if len(f) > 4 else 0.0))
    start = fst.start() if callable(fst.start) else fst.start
    out = []
    stack = [(start, (), (), 0.0, 0)]
    while stack:
        s, il, ol, w, n = stack.pop()
        if s in finals:
            out.append((il, ol, w + finals[s]))
        if n >= max_arcs:
            continue
        for dst, i, o, c in arcs.get(s, []):
            stack.append((dst, il + ((i,) if i else ()), ol + ((o,) if o else ()), w + c, n + 1))
    return out


def pronounce(L, word_ids: Sequence[int], max_arcs: int = 1000) -> List[Tuple[Tuple[int, ...], float]]:
    """Phone-id sequences (with costs) that ``L`` gives a word-id sequence: compose with a linear acceptor."""
    from asrkit.fst import kaldifst

    acc = kaldifst.make_linear_acceptor(list(word_ids))
    lf = L.copy()
    kaldifst.arcsort(lf, sort_type="olabel")
    comp = kaldifst.compose(lf, acc)
    return sorted({(il, round(w, 4)) for il, _, w in fst_paths(comp, max_arcs)})


# --------------------------------------------------------------------------------------------- lang dir


@dataclass
class LangConfig:
    sil_prob: float = 0.5
    gmm_sil_states: int = 3  # 3: one topology for all phones; 5: Kaldi's ergodic silence model


def _write_pair(d: Path, name: str, syms: Sequence[str], table: SymbolTable) -> None:
    (d / f"{name}.txt").write_text("".join(s + "\n" for s in syms), encoding="utf-8")
    (d / f"{name}.int").write_text("".join(f"{table[s]}\n" for s in syms), encoding="utf-8")


def write_lang_dir(
    dict_dir: DictDir,
    out_dir: PathLike,
    topo_text: str,
    phones: SymbolTable,
    words: SymbolTable,
    disambig_entries: Sequence[Tuple[str, Pron]],
    max_disambig: int,
    sil_prob: float = 0.5,
) -> None:
    """Write one Kaldi lang dir atomically (everything but the topology is shared between lang dirs)."""
    from asrkit.hmm.topology import read_topo

    read_topo(topo_text)  # fail before writing anything
    out_dir = Path(out_dir)
    entries = list(dict_dir.lexicon.items())
    sil_disambig = f"#{max_disambig + 1}"
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        pd = tmp / "phones"
        pd.mkdir()
        (tmp / "phones.txt").write_text(phones.to_text(), encoding="utf-8")
        (tmp / "words.txt").write_text(words.to_text(), encoding="utf-8")
        (tmp / "oov.txt").write_text(dict_dir.oov_word + "\n", encoding="utf-8")
        (tmp / "oov.int").write_text(f"{words[dict_dir.oov_word]}\n", encoding="utf-8")
        (tmp / "topo").write_text(topo_text, encoding="utf-8")
        disambig = [s for s in phones.symbols if s.startswith("#")]
        _write_pair(pd, "silence", dict_dir.silence_phones, phones)
        _write_pair(pd, "nonsilence", dict_dir.nonsilence_phones, phones)
        _write_pair(pd, "optional_silence", [dict_dir.optional_silence], phones)
        _write_pair(pd, "disambig", disambig, phones)
        _write_pair(pd, "context_indep", dict_dir.silence_phones, phones)
        _write_pair(pd, "wdisambig", ["#0"], words)
        (pd / "wdisambig_phones.int").write_text(f"{phones['#0']}\n", encoding="utf-8")
        (pd / "wdisambig_words.int").write_text(f"{words['#0']}\n", encoding="utf-8")
        # one set per phone (position-independent); every root "shared split", as Kaldi's prepare_lang.sh
        sets = [[p] for p in dict_dir.phones()]
        _write_lines_pair(pd, "sets", sets, phones)
        roots = [("shared split", p) for p in sets]
        (pd / "roots.txt").write_text("".join(f"{k} {' '.join(s)}\n" for k, s in roots), encoding="utf-8")
        (pd / "roots.int").write_text(
            "".join(f"{k} {' '.join(str(phones[x]) for x in s)}\n" for k, s in roots), encoding="utf-8"
        )
        extra = [list(dict_dir.silence_phones), list(dict_dir.nonsilence_phones)]
        _write_lines_pair(pd, "extra_questions", extra, phones)
        (pd / "align_lexicon.txt").write_text(
            "".join(f"{w} {w} {' '.join(p)}\n" for w, p in entries), encoding="utf-8"
        )
        L = make_lexicon_fst(entries, phones, words, sil_prob, dict_dir.optional_silence)
        if not L.write(str(tmp / "L.fst")):
            raise IOError(f"could not write {tmp / 'L.fst'}")
        Ld = make_lexicon_fst(
            disambig_entries, phones, words, sil_prob, dict_dir.optional_silence,
            sil_disambig=sil_disambig if sil_prob > 0 else None, add_disambig_self_loops=True,
        )
        if not Ld.write(str(tmp / "L_disambig.fst")):
            raise IOError(f"could not write {tmp / 'L_disambig.fst'}")


def _write_lines_pair(d: Path, name: str, rows: Sequence[Sequence[str]], table: SymbolTable) -> None:
    (d / f"{name}.txt").write_text("".join(" ".join(r) + "\n" for r in rows), encoding="utf-8")
    (d / f"{name}.int").write_text("".join(" ".join(str(table[x]) for x in r) + "\n" for r in rows), encoding="utf-8")


def lang_tables(dict_dir: DictDir) -> Tuple[SymbolTable, SymbolTable, List[Tuple[str, Pron]], int]:
    """What every lang dir of ``dict_dir`` shares: phones.txt, words.txt, the pronunciations with their
    disambiguation symbols and the largest ``#k`` they use (the arguments of :func:`write_lang_dir`)."""
    disambig_entries, max_disambig = add_lex_disambig(list(dict_dir.lexicon.items()))
    # one more symbol than add_lex_disambig used, for the silence arc of L_disambig (Kaldi does the same)
    phones = make_phone_table(dict_dir, max_disambig + 1)
    words = make_word_table(dict_dir.lexicon.words())
    return phones, words, disambig_entries, max_disambig


def prepare_lang(
    dict_dir: DictDir,
    out_root: PathLike,
    config: LangConfig = LangConfig(),
    lang_name: str = "lang",
    senone_name: str = "lang_senone",
    force: bool = False,
) -> Tuple[Path, Path]:
    """Write ``<out_root>/<lang_name>`` (three-state) and ``<out_root>/<senone_name>`` (one-state).

    Both share ``phones.txt``/``words.txt``/``L*.fst``; only ``topo`` differs. A lang dir with a done
    marker is kept unless ``force``.
    """
    from asrkit.hmm.topology import make_gmm_topo, make_senone_topo

    out_root = Path(out_root)
    entries = list(dict_dir.lexicon.items())
    phones, words, disambig_entries, max_disambig = lang_tables(dict_dir)
    sil_ids = [phones[p] for p in dict_dir.silence_phones]
    nonsil_ids = [phones[p] for p in dict_dir.nonsilence_phones]
    topos = {
        lang_name: make_gmm_topo(nonsil_ids, sil_ids, sil_states=config.gmm_sil_states),
        senone_name: make_senone_topo(sorted(sil_ids + nonsil_ids)),
    }
    paths = [out_root / name for name in topos]
    if not force and all(is_done(d) for d in paths):
        log.info("%s and %s are done (markers exist); skipping", *paths)
        return paths[0], paths[1]
    for name, topo in topos.items():
        d = out_root / name
        write_lang_dir(dict_dir, d, topo, phones, words, disambig_entries, max_disambig, config.sil_prob)
        mark_done(d)
        log.info(
            "wrote %s: %d phones, %d disambig symbols, %d words, %d pronunciations",
            d, len(dict_dir.phones()), max_disambig + 2, len(words) - 4, len(entries),
        )
    return paths[0], paths[1]
