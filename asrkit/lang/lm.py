"""N-gram language models: kaldingram training/pruning, ARPA reading, perplexity, G.fst with kaldilm.

- Training and pruning run the ``kaldingram`` CLI (``kaldingram train --ngram-order N``, interpolated
  Kneser-Ney; ``kaldingram prune --threshold T``, entropy pruning) in a subprocess.
- :func:`read_arpa` is a strict ARPA reader: a file that does not parse raises :class:`ArpaError`
  naming the file and the line, *before* kaldilm sees it (kaldilm aborts the process on bad input).
- :func:`perplexity` scores text with the ARPA back-off model, SRILM style: a sentence adds ``</s>``,
  out-of-vocabulary words are not scored (they are counted, and the history restarts after them), and
  ``ppl = 10 ** (-logprob / (words - oovs + sentences))``. It matches ``kaldingram ppl``.
- :func:`arpa_to_fst` runs ``kaldilm.arpa2fst(arpa, disambig_symbol="#0", read_symbol_table=words.txt)``
  in a subprocess (an abort there becomes a clear error), compiles its OpenFst text with kaldifst and
  writes G ilabel-sorted. N-grams with words missing from words.txt are skipped by kaldilm; they are
  counted and logged here.
- :func:`add_unigrams` gives words of the lexicon that the LM text never saw a small total unigram mass
  (``LmConfig.lexicon_unigram_mass``, spread evenly), rescales the other unigrams by one minus it and
  recomputes every back-off weight, so the model stays normalised and every word of words.txt has a
  finite probability in G (a word absent from the LM can never be recognised, whatever its acoustics).
"""
from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from asrkit.utils.atomic import atomic_path

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
BOS, EOS = "<s>", "</s>"


class ArpaError(ValueError):
    """An ARPA file that does not parse; the message names the file and the line."""


class LmError(RuntimeError):
    """A language-model tool that failed; the message carries the end of its output."""


# -------------------------------------------------------------------------------------------- reading


@dataclass
class ArpaModel:
    """A back-off n-gram model: ``probs[n][ngram] = (log10 p, log10 backoff)``."""

    counts: Dict[int, int]
    probs: Dict[int, Dict[Tuple[str, ...], Tuple[float, float]]] = field(default_factory=dict)

    @property
    def order(self) -> int:
        return max(self.counts)

    def vocab(self) -> Set[str]:
        return {ng[0] for ng in self.probs.get(1, {})}

    def num_ngrams(self) -> int:
        return sum(len(v) for v in self.probs.values())

    def logprob(self, word: str, history: Sequence[str]) -> float:
        """log10 P(word | history) with back-off (history is trimmed to order - 1)."""
        history = tuple(history[-(self.order - 1):]) if self.order > 1 else ()
        backoff = 0.0
        while True:
            ng = history + (word,)
            entry = self.probs.get(len(ng), {}).get(ng)
            if entry is not None:
                return backoff + entry[0]
            if not history:
                return -math.inf
            ctx = self.probs.get(len(history), {}).get(history)
            if ctx is not None:
                backoff += ctx[1]
            history = history[1:]

    def to_text(self) -> str:
        """ARPA text of the model (back-off weights written for every order but the highest)."""
        top = self.order
        lines = ["", "\\data\\"] + [f"ngram {n}={len(self.probs.get(n, {}))}" for n in sorted(self.counts)] + [""]
        for n in sorted(self.counts):
            lines.append(f"\\{n}-grams:")
            for ng, (lp, bo) in self.probs.get(n, {}).items():
                row = f"{lp:.7g}\t{' '.join(ng)}"
                lines.append(row + (f"\t{bo:.7g}" if n < top else ""))
            lines.append("")
        lines.append("\\end\\")
        return "\n".join(lines) + "\n"


def write_arpa(model: ArpaModel, path: PathLike) -> None:
    """Write ``model`` as an ARPA file, atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(model.to_text(), encoding="utf-8")


def recompute_backoffs(model: ArpaModel) -> None:
    """Set every context's back-off weight so that each history's distribution sums to one:
    ``bow(h) = (1 - sum_{w seen after h} p(w|h)) / (1 - sum_{same w} P(w|h[1:]))``, order by order
    (the lower orders first, as they enter the denominators). Contexts without continuations keep theirs."""
    for n in range(2, model.order + 1):
        seen: Dict[Tuple[str, ...], List[str]] = {}
        for ng in model.probs.get(n, {}):
            seen.setdefault(ng[:-1], []).append(ng[-1])
        lower = model.probs[n - 1]
        for h, words in seen.items():
            if h not in lower:
                continue
            num = 1.0 - sum(10.0 ** model.probs[n][h + (w,)][0] for w in words)
            den = 1.0 - sum(10.0 ** model.logprob(w, h[1:]) for w in words)
            if num <= 0 or den <= 0:  # all mass on the seen words: nothing to back off to
                continue
            lower[h] = (lower[h][0], math.log10(num / den))


def add_unigrams(model: ArpaModel, words: Iterable[str], mass: float) -> List[str]:
    """Give the ``words`` the model lacks ``mass`` of unigram probability in all (evenly), scale the other
    unigrams by ``1 - mass``, recompute the back-off weights; returns the words added (sorted)."""
    new = sorted(set(words) - model.vocab() - {BOS, EOS})
    if not new:
        return []
    if not 0.0 < mass < 1.0:
        raise ValueError(f"lexicon_unigram_mass must be in (0, 1) to add {len(new)} words, not {mass}")
    uni = model.probs[1]
    scale = math.log10(1.0 - mass)
    for ng, (lp, bo) in list(uni.items()):
        if ng != (BOS,):  # <s> is never predicted (its -99 stays)
            uni[ng] = (lp + scale, bo)
    each = math.log10(mass / len(new))
    for w in new:
        uni[(w,)] = (each, 0.0)
    model.counts[1] = len(uni)
    recompute_backoffs(model)
    return new


def read_arpa(path: PathLike) -> ArpaModel:
    """Parse an ARPA file strictly; :class:`ArpaError` names the file and the line of the first problem."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ARPA file not found: {path}")
    counts: Dict[int, int] = {}
    probs: Dict[int, Dict[Tuple[str, ...], Tuple[float, float]]] = {}
    section: Optional[int] = None  # None before \data\, 0 in \data\, n in \n-grams:
    seen_data = seen_end = False
    lineno = 0

    def err(msg: str) -> ArpaError:
        return ArpaError(f"{path}:{lineno}: {msg}")

    try:
        f = open(path, encoding="utf-8")
        lines = iter(f)
    except OSError as e:  # pragma: no cover
        raise ArpaError(f"{path}: cannot open: {e}") from e
    with f:
        try:
            for lineno, raw in enumerate(lines, 1):
                line = raw.strip()
                if not line:
                    continue
                if seen_end:
                    raise err(f"text after \\end\\: {line[:80]!r}")
                if line == "\\data\\":
                    if seen_data:
                        raise err("a second \\data\\ section")
                    seen_data, section = True, 0
                    continue
                if line == "\\end\\":
                    seen_end = True
                    continue
                if line.startswith("\\") and line.endswith("-grams:"):
                    if not seen_data:
                        raise err("an n-gram section before \\data\\")
                    try:
                        n = int(line[1:-len("-grams:")])
                    except ValueError:
                        raise err(f"bad section header {line!r}") from None
                    if n not in counts:
                        raise err(f"section {line!r} has no 'ngram {n}=' count in \\data\\")
                    if n in probs:
                        raise err(f"section {line!r} appears twice")
                    if n != len(probs) + 1:
                        raise err(f"section {line!r} out of order")
                    section = n
                    probs[n] = {}
                    continue
                if section is None:
                    raise err(f"expected \\data\\ first, got {line[:80]!r}")
                if section == 0:
                    if not line.startswith("ngram ") or "=" not in line:
                        raise err(f"expected 'ngram N=COUNT' in \\data\\, got {line[:80]!r}")
                    k, v = line[len("ngram "):].split("=", 1)
                    try:
                        counts[int(k)] = int(v)
                    except ValueError:
                        raise err(f"bad count line {line!r}") from None
                    continue
                fields = line.split()
                n = section
                if len(fields) not in (n + 1, n + 2):
                    raise err(f"a {n}-gram line needs {n + 1} or {n + 2} fields, got {len(fields)}: {line[:80]!r}")
                try:
                    lp = float(fields[0])
                    bo = float(fields[n + 1]) if len(fields) == n + 2 else 0.0
                except ValueError:
                    raise err(f"not a number in {line[:80]!r}") from None
                if math.isnan(lp) or lp > 0 or math.isnan(bo):
                    raise err(f"bad log-probability in {line[:80]!r}")
                probs[n][tuple(fields[1:n + 1])] = (lp, bo)
        except UnicodeDecodeError as e:
            raise ArpaError(f"{path}: after line {lineno}: not UTF-8 text ({e})") from None
    if not seen_data:
        raise ArpaError(f"{path}: no \\data\\ section (not an ARPA file?)")
    if not seen_end:
        raise ArpaError(f"{path}:{lineno}: missing \\end\\ (truncated file?)")
    for n, c in counts.items():
        got = len(probs.get(n, {}))
        if got != c:
            raise ArpaError(f"{path}: \\data\\ says ngram {n}={c} but the {n}-grams section has {got}")
    if 1 not in probs or not probs[1]:
        raise ArpaError(f"{path}: no unigrams")
    return ArpaModel(counts, probs)


# ----------------------------------------------------------------------------------------- perplexity


@dataclass
class PplResult:
    sentences: int
    words: int
    oovs: int
    logprob: float  # log10
    zeroprobs: int = 0

    @property
    def ppl(self) -> float:
        denom = self.words - self.oovs - self.zeroprobs + self.sentences
        return 10 ** (-self.logprob / denom) if denom > 0 else math.inf

    @property
    def ppl1(self) -> float:
        denom = self.words - self.oovs - self.zeroprobs
        return 10 ** (-self.logprob / denom) if denom > 0 else math.inf

    @property
    def oov_rate(self) -> float:
        return self.oovs / self.words if self.words else 0.0

    def summary(self) -> str:
        return (
            f"{self.sentences} sentences, {self.words} words, {self.oovs} OOVs ({100 * self.oov_rate:.2f}%), "
            f"{self.zeroprobs} zeroprobs, logprob= {self.logprob:.4f} ppl= {self.ppl:.4f} ppl1= {self.ppl1:.4f}"
        )


def perplexity(model: ArpaModel, sentences: Iterable[Sequence[str]]) -> PplResult:
    vocab = model.vocab()
    res = PplResult(0, 0, 0, 0.0)
    for sent in sentences:
        res.sentences += 1
        hist: List[str] = [BOS]
        for w in list(sent) + [EOS]:
            if w != EOS:
                res.words += 1
            if w not in vocab or w == BOS:
                res.oovs += 1
                hist = []  # SRILM: the history restarts after an OOV
                continue
            lp = model.logprob(w, hist)
            if lp == -math.inf or lp <= -98:
                res.zeroprobs += 1
            else:
                res.logprob += lp
            hist.append(w)
    return res


# ------------------------------------------------------------------------------------------- training


def _kaldingram() -> List[str]:
    exe = Path(sys.executable).with_name("kaldingram")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "kaldingram.cli"]


def _run(cmd: List[str], what: str) -> str:
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise LmError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    log.debug("%s took %.2fs", what, time.time() - t0)
    return proc.stdout


@dataclass
class LmConfig:
    order: int = 3
    prune_threshold: float = 0.0  # kaldingram prune --threshold (relative perplexity change); 0: no pruning
    min_counts: Tuple[int, ...] = ()  # --gtNmin per order (kaldingram's "keep all" is 0)
    unk_word: Optional[str] = "<UNK>"  # training words outside the vocabulary become this; None: kept
    # words of words.txt (the lexicon) that the LM text lacks share this unigram probability (0: not added,
    # and those words can never be recognised)
    lexicon_unigram_mass: float = 0.01


def prepare_lm_text(
    sentences: Iterable[Sequence[str]], out: PathLike, vocab: Optional[Set[str]] = None, unk: Optional[str] = "<UNK>"
) -> Tuple[int, int]:
    """Write one sentence per line; words outside ``vocab`` become ``unk`` (when both are given).

    Returns (sentences, words mapped to unk)."""
    n = mapped = 0
    with open(out, "w", encoding="utf-8") as f:
        for sent in sentences:
            if not sent:
                continue
            if vocab is not None and unk:
                new = [w if w in vocab else unk for w in sent]
                mapped += sum(a != b for a, b in zip(new, sent))
                sent = new
            f.write(" ".join(sent) + "\n")
            n += 1
    return n, mapped


def train_arpa(text: PathLike, out_arpa: PathLike, config: LmConfig = LmConfig()) -> ArpaModel:
    """Train (and optionally prune) an ARPA model on a one-sentence-per-line text; written atomically."""
    if not 1 <= config.order <= 5:
        raise ValueError(f"kaldingram supports orders 1..5, not {config.order}")
    out_arpa = Path(out_arpa)
    with atomic_path(out_arpa) as tmp:
        cmd = _kaldingram() + ["train", "--ngram-order", str(config.order), "--text", str(text), "--lm", str(tmp)]
        for n, c in enumerate(config.min_counts, 1):
            if c:
                cmd += [f"--gt{n}min", str(c)]
        _run(cmd, "kaldingram train")
        if config.prune_threshold > 0:
            pruned = tmp.with_name(tmp.name + ".pruned")
            _run(
                _kaldingram() + ["prune", "--threshold", f"{config.prune_threshold:g}", "--lm", str(tmp),
                                 "--write-lm", str(pruned), "--encoding", "utf-8"],
                "kaldingram prune",
            )
            os.replace(pruned, tmp)
        model = read_arpa(tmp)
    return model


def kaldingram_ppl(arpa: PathLike, text: PathLike) -> str:
    """The summary lines of ``kaldingram ppl`` (for cross-checking :func:`perplexity`)."""
    out = _run(_kaldingram() + ["ppl", "--lm", str(arpa), "--text", str(text), "--encoding", "utf-8"], "kaldingram ppl")
    return out.strip()


# ----------------------------------------------------------------------------------------------- G.fst

_ARPA2FST_SNIPPET = (
    "import sys, kaldilm\n"
    "s = kaldilm.arpa2fst(sys.argv[1], disambig_symbol=sys.argv[2], read_symbol_table=sys.argv[3],"
    " max_order=int(sys.argv[5]))\n"
    "open(sys.argv[4], 'w').write(s)\n"
)


@dataclass
class GStats:
    states: int
    arcs: int
    skipped_words: List[str]
    seconds: float


def arpa_to_fst_text(arpa: PathLike, words_txt: PathLike, disambig: str = "#0", max_order: int = -1) -> str:
    """kaldilm's OpenFst text of G (integer labels), run in a subprocess."""
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "G.txt"
        cmd = [sys.executable, "-c", _ARPA2FST_SNIPPET, str(arpa), disambig, str(words_txt), str(out), str(max_order)]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
            raise ArpaError(f"kaldilm.arpa2fst failed on {arpa} (exit {proc.returncode}):\n{tail}")
        return out.read_text()


def arpa_to_fst(
    arpa: PathLike, words_txt: PathLike, out_fst: Optional[PathLike] = None, disambig: str = "#0", max_order: int = -1
):
    """G.fst from an ARPA file and a words.txt: checked, converted with kaldilm, ilabel-sorted, written atomically.

    Returns (fst, GStats)."""
    from asrkit.fst import kaldifst
    from asrkit.lang.lang_dir import SymbolTable

    t0 = time.time()
    model = read_arpa(arpa)  # clear error with file:line before kaldilm sees it
    words = SymbolTable.read(words_txt)
    for sym in (disambig, BOS, EOS):
        if sym not in words:
            raise ArpaError(f"{words_txt} has no {sym!r} (needed for G)")
    missing = sorted(w for w in model.vocab() if w not in words)
    if missing:
        log.warning(
            "%d words of %s are not in %s; their n-grams are skipped: %s",
            len(missing), arpa, words_txt, " ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""),
        )
    text = arpa_to_fst_text(arpa, words_txt, disambig, max_order)
    fst = kaldifst.compile(text)
    kaldifst.arcsort(fst, sort_type="ilabel")
    n_arcs = sum(1 for line in text.splitlines() if len(line.split()) >= 4)
    stats = GStats(fst.num_states, n_arcs, missing, 0.0)
    if out_fst is not None:
        with atomic_path(out_fst) as tmp:
            if not fst.write(str(tmp)):
                raise IOError(f"could not write {tmp}")
    stats.seconds = time.time() - t0
    return fst, stats


# ------------------------------------------------------------------------------------------- pipeline


def build_lm(
    texts: Sequence[PathLike],
    out_dir: PathLike,
    config: LmConfig = LmConfig(),
    words_txt: Optional[PathLike] = None,
    dev_texts: Sequence[PathLike] = (),
    force: bool = False,
    plain_texts: Sequence[PathLike] = (),
) -> Dict[str, Path]:
    """Stage 3, LM side: ``lm_<N>gram.arpa``, ``G.fst`` (with ``words_txt``) and ``ppl_dev.txt``.

    ``texts`` and ``dev_texts`` are Kaldi ``text`` files (the first field of a line is its id),
    ``plain_texts`` one sentence per line. With ``words_txt``, training words outside it become ``config.unk_word``.
    Outputs with done markers are kept unless ``force``.
    """
    from asrkit.lang.lang_dir import SymbolTable
    from asrkit.lang.lexicon import oov_rate, read_text
    from asrkit.utils.atomic import atomic_write_text, is_done, mark_done

    t0 = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arpa = out_dir / f"lm_{config.order}gram.arpa"
    out = {"arpa": arpa}
    vocab = None
    if words_txt is not None:
        vocab = {w for w in SymbolTable.read(words_txt).symbols if w not in ("<eps>", "#0", "<s>", "</s>")}
    if force or not is_done(arpa):
        sents = ([s for p in texts for s in read_text(p, has_ids=True)]
                 + [s for p in plain_texts for s in read_text(p, has_ids=False)])
        with tempfile.TemporaryDirectory() as td:
            txt = Path(td) / "lm_text.txt"
            n, mapped = prepare_lm_text(sents, txt, vocab, config.unk_word)
            if n == 0:
                raise LmError(f"no training sentences in {', '.join(map(str, list(texts) + list(plain_texts)))}")
            model = train_arpa(txt, arpa, config)
        if vocab is not None and config.lexicon_unigram_mass > 0:
            added = add_unigrams(model, vocab, config.lexicon_unigram_mass)
            if added:
                write_arpa(model, arpa)
                log.info("added %d words of %s absent from the LM text, %.3g of unigram mass in all "
                         "(log10 p = %.2f each): %s", len(added), words_txt, config.lexicon_unigram_mass,
                         model.probs[1][(added[0],)][0], " ".join(added[:10]) + (" ..." if len(added) > 10 else ""))
        mark_done(arpa)
        log.info(
            "trained %s on %d sentences (%d words mapped to %s): %s in %.2fs",
            arpa, n, mapped, config.unk_word, " ".join(f"{k}-grams={v}" for k, v in model.counts.items()),
            time.time() - t0,
        )
        force = True
    else:
        log.info("%s is done; skipping training", arpa)
        model = None
    if words_txt is not None:
        g = out_dir / "G.fst"
        out["G"] = g
        if force or not is_done(g):
            _, st = arpa_to_fst(arpa, words_txt, g)
            mark_done(g)
            log.info("wrote %s: %d states, %d arcs in %.2fs", g, st.states, st.arcs, st.seconds)
    if dev_texts:
        ppl_path = out_dir / "ppl_dev.txt"
        out["ppl"] = ppl_path
        if force or not is_done(ppl_path):
            model = model or read_arpa(arpa)
            dev = [s for p in dev_texts for s in read_text(p, has_ids=True)]
            res = perplexity(model, dev)
            lines = [f"lm: {arpa}", f"dev: {' '.join(map(str, dev_texts))}", res.summary()]
            if vocab is not None:
                lines.append(f"vs words.txt: {oov_rate(dev, vocab).summary()}")
            atomic_write_text(ppl_path, "\n".join(lines) + "\n")
            mark_done(ppl_path)
            log.info("dev perplexity: %s", res.summary())
    return out
