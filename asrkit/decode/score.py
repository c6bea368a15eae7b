"""WER / SER scoring with kaldialign, in Kaldi's file formats.

``wer_<weight>`` (as Kaldi's compute-wer)::

    %WER 12.34 [ 56 / 454, 3 ins, 10 del, 43 sub ]
    %SER 20.00 [ 4 / 20 ]
    Scored 20 sentences, 1 not present in hyp.
    %CI95 [ 10.10, 14.80 ] (bootstrap, 1000 replications, seed 0)

``per_utt_<weight>`` (as Kaldi's wer_per_utt_details.pl; ``***`` fills gaps; ops C S I D)::

    utt1 ref  a  b  ***  d
    utt1 hyp  a  x  y    ***
    utt1 op   C  S  I    D
    utt1 #csid 1 1 1 1

``best_wer``: the best ``%WER`` line followed by the path of its ``wer`` file.

A reference utterance without a hypothesis counts as all deletions and is reported (``missing``);
hypotheses without a reference are ignored and reported (``extra``). A normaliser (any callable from a
word list to a word list) is applied to both sides before scoring: see :func:`make_normalizer`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import kaldialign

log = logging.getLogger(__name__)
PathLike = Union[str, Path]
EPS = "***"
Normalizer = Callable[[List[str]], List[str]]
NOISE_TOKENS = ("<UNK>", "<unk>", "<NOISE>", "<noise>", "[NOISE]", "[noise]", "<SPOKEN_NOISE>", "<SIL>",
                "[LAUGHTER]", "[laughter]", "<v-noise>")


def make_normalizer(uppercase: bool = False, lowercase: bool = False,
                    drop: Iterable[str] = NOISE_TOKENS) -> Normalizer:
    """A normaliser: optional case folding, then drop the given tokens (compared after folding)."""
    if uppercase and lowercase:
        raise ValueError("choose uppercase or lowercase, not both")
    fold = str.upper if uppercase else str.lower if lowercase else (lambda s: s)
    dropped = {fold(t) for t in drop}

    def normalize(words: List[str]) -> List[str]:
        return [w for w in (fold(w) for w in words) if w not in dropped]

    return normalize


def read_text(path: PathLike) -> Dict[str, List[str]]:
    """Kaldi ``text``: ``utt word word ...`` (an utterance with no words is allowed)."""
    out: Dict[str, List[str]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if f[0] in out:
            raise ValueError(f"{path}:{n}: utterance {f[0]} appears twice")
        out[f[0]] = f[1:]
    return out


@dataclass
class UttScore:
    utt: str
    ref: List[str]
    hyp: List[str]
    alignment: List[Tuple[str, str]]
    ins: int
    dels: int
    subs: int
    missing: bool = False

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.subs

    @property
    def correct(self) -> int:
        return sum(1 for r, h in self.alignment if r == h and r != EPS)


@dataclass
class WerResult:
    ins: int = 0
    dels: int = 0
    subs: int = 0
    ref_words: int = 0
    sentences: int = 0
    sentence_errors: int = 0
    missing: List[str] = field(default_factory=list)
    extra: List[str] = field(default_factory=list)
    per_utt: List[UttScore] = field(default_factory=list)
    ci95: Optional[Tuple[float, float]] = None  # percent
    ci_replications: int = 0
    ci_seed: int = 0

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.subs

    @property
    def wer(self) -> float:
        """Percent; with an empty reference, 0 if no errors else 100 * errors (Kaldi divides by max(1, n))."""
        return 100.0 * self.errors / max(1, self.ref_words)

    @property
    def ser(self) -> float:
        return 100.0 * self.sentence_errors / max(1, self.sentences)

    def wer_line(self) -> str:
        return (f"%WER {self.wer:.2f} [ {self.errors} / {self.ref_words}, {self.ins} ins, {self.dels} del, "
                f"{self.subs} sub ]")

    def format(self) -> str:
        lines = [self.wer_line(), f"%SER {self.ser:.2f} [ {self.sentence_errors} / {self.sentences} ]",
                 f"Scored {self.sentences} sentences, {len(self.missing)} not present in hyp."]
        if self.ci95 is not None:
            lines.append(f"%CI95 [ {self.ci95[0]:.2f}, {self.ci95[1]:.2f} ] (bootstrap, {self.ci_replications} "
                         f"replications, seed {self.ci_seed})")
        if self.extra:
            lines.append(f"Ignored {len(self.extra)} hypotheses without a reference.")
        return "\n".join(lines) + "\n"


def align_utt(utt: str, ref: Sequence[str], hyp: Sequence[str], missing: bool = False) -> UttScore:
    ref, hyp = list(ref), list(hyp)
    ali = kaldialign.align(ref, hyp, EPS) if (ref or hyp) else []
    ins = sum(1 for r, h in ali if r == EPS)
    dels = sum(1 for r, h in ali if h == EPS)
    subs = sum(1 for r, h in ali if r != EPS and h != EPS and r != h)
    return UttScore(utt, ref, hyp, ali, ins, dels, subs, missing)


def compute_wer(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]],
                normalize: Optional[Normalizer] = None, bootstrap: bool = True, replications: int = 1000,
                seed: int = 0) -> WerResult:
    """Score every reference utterance; hypotheses may be word lists or strings."""
    res = WerResult(ci_replications=replications, ci_seed=seed)
    norm = normalize or (lambda ws: list(ws))
    for utt, ref in refs.items():
        ref = norm(list(ref.split() if isinstance(ref, str) else ref))
        missing = utt not in hyps
        hyp = hyps.get(utt, [])
        hyp = norm(list(hyp.split() if isinstance(hyp, str) else hyp))
        if missing:
            res.missing.append(utt)
        u = align_utt(utt, ref, hyp, missing)
        res.per_utt.append(u)
        res.ins += u.ins
        res.dels += u.dels
        res.subs += u.subs
        res.ref_words += len(ref)
        res.sentences += 1
        res.sentence_errors += int(u.errors > 0)
    res.extra = [u for u in hyps if u not in refs]
    if res.missing:
        log.warning("%d reference utterances have no hypothesis (scored as deletions), e.g. %s",
                    len(res.missing), res.missing[:5])
    if res.extra:
        log.warning("%d hypotheses have no reference (ignored), e.g. %s", len(res.extra), res.extra[:5])
    if bootstrap and res.sentences > 0 and res.ref_words > 0:
        ci = kaldialign.bootstrap_wer_ci([u.ref for u in res.per_utt], [u.hyp for u in res.per_utt],
                                         replications=replications, seed=seed)
        res.ci95 = (100.0 * ci["ci95min"], 100.0 * ci["ci95max"])
    return res


def format_per_utt(result: WerResult) -> str:
    lines = []
    for u in result.per_utt:
        if u.alignment:
            refs = [r for r, _ in u.alignment]
            hyps = [h for _, h in u.alignment]
            ops = ["I" if r == EPS else "D" if h == EPS else "C" if r == h else "S" for r, h in u.alignment]
        else:
            refs, hyps, ops = [], [], []
        widths = [max(len(a), len(b), len(c)) for a, b, c in zip(refs, hyps, ops)]
        pad = lambda toks: "  ".join(t.ljust(w) for t, w in zip(toks, widths)).rstrip()  # noqa: E731
        lines.append(f"{u.utt} ref  {pad(refs)}".rstrip())
        lines.append(f"{u.utt} hyp  {pad(hyps)}".rstrip() + ("  (no hypothesis)" if u.missing else ""))
        lines.append(f"{u.utt} op   {pad(ops)}".rstrip())
        lines.append(f"{u.utt} #csid {u.correct} {u.subs} {u.ins} {u.dels}")
    return "\n".join(lines) + ("\n" if lines else "")


def weight_name(weight) -> str:
    w = float(weight)
    return str(int(w)) if w.is_integer() else f"{w:g}"


def write_wer_files(result: WerResult, out_dir: PathLike, weight=None) -> Path:
    """``wer_<weight>`` (or ``wer``) and ``per_utt_<weight>`` in ``out_dir``; returns the wer file."""
    from asrkit.utils.atomic import atomic_write_text

    out = Path(out_dir)
    suffix = "" if weight is None else f"_{weight_name(weight)}"
    atomic_write_text(out / f"wer{suffix}", result.format())
    atomic_write_text(out / f"per_utt{suffix}", format_per_utt(result))
    if result.missing:
        atomic_write_text(out / f"missing{suffix}", "".join(f"{u}\n" for u in result.missing))
    return out / f"wer{suffix}"


def write_best_wer(results: Mapping[object, WerResult], out_dir: PathLike) -> Tuple[object, WerResult]:
    """Pick the lowest WER (ties: the first weight given) and write ``best_wer``."""
    from asrkit.utils.atomic import atomic_write_text

    if not results:
        raise ValueError("no results to pick the best from")
    best_w = min(results, key=lambda w: (results[w].errors / max(1, results[w].ref_words)))
    best = results[best_w]
    out = Path(out_dir)
    atomic_write_text(out / "best_wer", f"{best.wer_line()} {out / ('wer_' + weight_name(best_w))}\n")
    return best_w, best


def read_best_weight(best_wer: PathLike) -> float:
    """The weight of a ``best_wer`` file (the suffix of the wer file it names)."""
    line = Path(best_wer).read_text().split()
    name = Path(line[-1]).name
    if not name.startswith("wer_"):
        raise ValueError(f"{best_wer}: cannot find a wer_<weight> file name in {line[-1]!r}")
    return float(name[len("wer_"):])


def score_files(ref: PathLike, hyp: PathLike, out_dir: PathLike, weight=None,
                normalize: Optional[Normalizer] = None, bootstrap: bool = True, replications: int = 1000,
                seed: int = 0) -> WerResult:
    res = compute_wer(read_text(ref), read_text(hyp), normalize, bootstrap, replications, seed)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_wer_files(res, out_dir, weight)
    return res
