"""Stage 3, lexicon side: from a lexicon source and transcripts to ``data/local/dict`` and the lang dirs."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from asrkit.lang.lexicon import (
    CMU_PHONES, CMU_PHONES_STRESSED, SIL_PHONE, SPN_PHONE, UNK_WORD, Lexicon, LexiconError, load_cmudict, oov_rate,
    phone_set_by_name, read_lexicon, read_text,
)
from asrkit.utils.atomic import atomic_write_text, is_done, mark_done

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass
class DictConfig:
    source: str = "lexicon"  # lexicon | cmudict | graphemic
    lexicon: Optional[PathLike] = None
    strip_stress: bool = False
    phone_set: Optional[str] = None  # cmu | cmu-stressed | espeak | a file of phones | None (infer)
    cmudict_fallback: bool = False  # --lexicon: pronounce missing words from CMUdict first
    g2p: bool = True  # espeak-ng for words still missing
    g2p_phone_set: Optional[str] = None  # default: guessed from the phone set
    words_from: str = "auto"  # text | lexicon | both | auto (both for a corpus lexicon, else text)
    graphemic_vocab_size: int = 200
    graphemic_model_type: str = "bpe"
    seed: int = 0


def _load_phone_set(spec: Optional[str]) -> Optional[Tuple[str, ...]]:
    if spec is None or spec in ("infer", "espeak"):
        return None
    if spec in ("cmu", "cmu-stressed", "cmu_stressed"):
        return phone_set_by_name(spec)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"phone set {spec!r}: not a known name (cmu, cmu-stressed, espeak) nor a file")
    return tuple(line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _guess_g2p_set(phones) -> str:
    phones = set(phones)
    if phones <= set(CMU_PHONES):
        return "cmu"
    if phones <= set(CMU_PHONES_STRESSED) | set(CMU_PHONES):
        return "cmu-stressed"
    return "espeak"


def text_words(texts: Sequence[PathLike], plain_texts: Sequence[PathLike] = ()
               ) -> Tuple[Dict[str, Tuple[str, int]], List[List[str]]]:
    """Words of Kaldi ``text`` files (``id w1 w2 ...``) and of plain texts (word lists or sentences),
    with where each was first seen."""
    first: Dict[str, Tuple[str, int]] = {}
    sents: List[List[str]] = []
    for path, has_ids in [(p, True) for p in texts] + [(p, False) for p in plain_texts]:
        for lineno, words in enumerate(read_text(path, has_ids=has_ids), 1):
            sents.append(words)
            for w in words:
                first.setdefault(w, (str(path), lineno))
    return first, sents


@dataclass
class DictResult:
    lexicon: Lexicon
    oov_report: str
    sources: Dict[str, int] = field(default_factory=dict)
    graphemic_model: Optional[object] = None


# Silence and noise phones a CMU-style lexicon may carry besides the 39.
NON_SPEECH_PHONES = {SIL_PHONE, SPN_PHONE, "NSN", "LAU", "sil", "spn", "nsn", "lau"}


def check_cmu_like(lex: Lexicon, source: str) -> None:
    """A lexicon of CMU phones with a few others (a typo, a stray phone) would get G2P in espeak phones
    and a mixed phone set: refuse it, naming the first line with a non-CMU phone."""
    cmu = set(CMU_PHONES) | set(CMU_PHONES_STRESSED)
    phones = lex.phones() - NON_SPEECH_PHONES
    stray = sorted(phones - cmu)
    if not stray or len(phones & cmu) < 0.8 * len(phones):
        return  # CMU throughout, or a phone set of its own
    where = min((lex.phone_lines.get(p, source) for p in stray), key=_line_order)
    raise LexiconError(
        f"{where}: phone(s) {' '.join(stray[:10])} are not CMU phones, while {len(phones & cmu)} of the lexicon's "
        f"{len(phones)} phones are: fix the lexicon, or declare its phone set (--phone-set cmu refuses every "
        f"non-CMU phone; --phone-set FILE lists the phones of a set of your own)")


def _line_order(where: str):
    path, _, line = where.rpartition(":")
    return (path, int(line)) if line.isdigit() else (where, 0)


def build_lexicon(config: DictConfig, texts: Sequence[PathLike], plain_texts: Sequence[PathLike] = ()) -> DictResult:
    """The lexicon for the words of ``texts`` (Kaldi text) and ``plain_texts`` (and of the source
    lexicon, per ``words_from``)."""
    first, sents = text_words(texts, plain_texts)
    tw = list(first)
    sources: Dict[str, int] = {}
    gmodel = None
    allowed = _load_phone_set(config.phone_set)
    if config.source == "graphemic":
        from asrkit.lang.graphemic import GraphemicModel

        if not sents:
            raise LexiconError("--graphemic needs --text to train the word-piece model")
        gmodel = GraphemicModel.train(sents, config.graphemic_vocab_size, config.graphemic_model_type, config.seed)
        words = [w for w in tw if w != UNK_WORD]
        lex = gmodel.lexicon(words)
        sources["graphemic"] = len(lex)
        report = f"graphemic lexicon: {len(lex)} words, {len(gmodel.phones())} word pieces (phones)"
        return DictResult(lex, report, sources, gmodel)

    if config.source == "cmudict":
        base = load_cmudict(strip_stress_digits=config.strip_stress or config.phone_set in (None, "cmu"))
        base_name = "cmudict"
        words_from = "text" if config.words_from == "auto" else config.words_from
    elif config.source == "lexicon":
        if config.lexicon is None:
            raise ValueError("source 'lexicon' needs a lexicon file")
        base = read_lexicon(config.lexicon, strip_stress_digits=config.strip_stress, phone_set=allowed)
        if allowed is None and config.g2p_phone_set is None:  # the phone set would be guessed from it
            check_cmu_like(base, str(config.lexicon))
        base_name = str(config.lexicon)
        words_from = "both" if config.words_from == "auto" else config.words_from
    else:
        raise ValueError(f"unknown lexicon source {config.source!r}")

    stats = oov_rate(sents, base)
    report = f"text vs {base_name}: {stats.summary()}"
    log.info(report)
    if words_from == "text" and not tw:
        raise LexiconError("no words: give --text (or --words-from lexicon)")
    wanted = tw if words_from == "text" else list(base.entries) if words_from == "lexicon" else list(
        dict.fromkeys(list(base.entries) + tw)
    )
    wanted = [w for w in wanted if w != UNK_WORD]
    lex = base.subset(wanted)
    sources[base_name] = len(lex)
    missing = [w for w in wanted if w not in lex]
    if missing and config.cmudict_fallback and config.source != "cmudict":
        cmu = load_cmudict(strip_stress_digits=_guess_g2p_set(base.phones()) != "cmu-stressed")
        got = [w for w in missing if w in cmu]
        for w in got:
            for p in cmu[w]:
                lex.add(w, p)
        sources["cmudict"] = len(got)
        missing = [w for w in missing if w not in lex]
    if missing and config.g2p:
        from asrkit.lang.g2p import g2p

        g2p_set = config.g2p_phone_set or (
            config.phone_set if config.phone_set in ("cmu", "cmu-stressed", "espeak") else _guess_g2p_set(base.phones())
        )
        g = g2p(missing, g2p_set, allowed_phones=allowed)
        lex.update(g)
        sources["espeak-ng"] = len(g)
        log.info("espeak-ng G2P (%s phones) for %d words: %s", g2p_set, len(g), " ".join(missing[:10]))
        missing = []
    if missing:
        w = missing[0]
        where = f" (first seen in {first[w][0]} line {first[w][1]})" if w in first else ""
        raise LexiconError(
            f"no pronunciation for word {w!r}{where} and no G2P enabled"
            + (f"; {len(missing) - 1} more missing: {' '.join(missing[1:11])}" if len(missing) > 1 else "")
        )
    lex.validate(allowed, source="lexicon")
    report += "; pronunciations from " + ", ".join(f"{k}: {v} words" for k, v in sources.items())
    return DictResult(lex, report, sources, gmodel)


def prepare_dict_and_lang(
    config: DictConfig,
    texts: Sequence[PathLike],
    out_dir: PathLike,
    sil_prob: float = 0.5,
    sil_states: int = 3,
    force: bool = False,
    plain_texts: Sequence[PathLike] = (),
) -> Tuple[Path, Path, Path]:
    """Write ``<out_dir>/local/dict``, ``<out_dir>/lang`` and ``<out_dir>/lang_senone``."""
    from asrkit.lang.lang_dir import DictDir, LangConfig, prepare_lang

    t0 = time.time()
    out_dir = Path(out_dir)
    dict_path = out_dir / "local" / "dict"
    if is_done(dict_path) and not force:
        log.info("%s is done; reading it back", dict_path)
        dd = DictDir.read(dict_path)
    else:
        res = build_lexicon(config, texts, plain_texts)
        dd = DictDir(res.lexicon)
        dd.write(dict_path)
        atomic_write_text(dict_path.parent / "dict_report.txt", res.oov_report + "\n")
        if res.graphemic_model is not None:
            res.graphemic_model.save(dict_path.parent / "graphemic.model")
        mark_done(dict_path)
        force = True  # a new dict invalidates the lang dirs
    lang, senone = prepare_lang(dd, out_dir, LangConfig(sil_prob=sil_prob, gmm_sil_states=sil_states), force=force)
    log.info(
        "prepared %s, %s, %s: %d words, %d prons, %d phones in %.2fs",
        dict_path, lang, senone, len(dd.lexicon), dd.lexicon.num_prons(), len(dd.phones()), time.time() - t0,
    )
    return dict_path, lang, senone
