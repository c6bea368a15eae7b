"""Decoding with a GMM system: kaldi_hmm_gmm's own ``FasterDecoder`` over ``DecodableAmDiagGmmScaled``
(decoder and decodable from the same package, docs/stack.md) on an HCLG from :mod:`asrkit.graph`, and
WER with :mod:`asrkit.decode.score` (kaldialign).

Decode dir: ``hyp.txt`` (Kaldi text), ``wer`` (``%WER ...`` line), ``summary.json``.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from asrkit.fst import kaldi_hmm_gmm, kaldifst

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass
class GmmDecodeConfig:
    acoustic_scale: float = 0.083333  # Kaldi's decode.sh default for GMMs (1/12)
    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 200


@dataclass
class GmmDecodeResult:
    hyps: Dict[str, List[str]] = field(default_factory=dict)
    not_final: List[str] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    wer: Optional[float] = None
    wer_line: str = ""


def make_graph(model, lang_dir: PathLike, g_fst: PathLike, out_dir: Optional[PathLike] = None):
    """HCLG for ``model`` with asrkit.graph (writes a graph dir when ``out_dir`` is given)."""
    from asrkit.graph import HmmModel, Lang, make_graph_dir, make_hclg

    hm = HmmModel(model.transition_model, model.tree, {})
    if out_dir is not None:
        make_graph_dir(lang_dir, g_fst, hm, out_dir)
        return kaldifst.StdVectorFst.read(str(Path(out_dir) / "HCLG.fst"))
    lang = Lang.read(lang_dir)
    G = kaldifst.StdVectorFst.read(str(g_fst))
    hclg, _, _ = make_hclg(lang.L, G, hm, lang.disambig_phones, lang.phones["#0"], lang.words["#0"])
    return hclg


_CTX: dict = {}


def _decode_part(utts: Sequence[str]):
    c = _CTX
    cfg: GmmDecodeConfig = c["cfg"]
    opts = kaldi_hmm_gmm.FasterDecoderOptions(beam=cfg.beam, max_active=cfg.max_active, min_active=cfg.min_active)
    dec = kaldi_hmm_gmm.FasterDecoder(c["hclg"], opts)
    out = []
    for u in utts:
        f = np.ascontiguousarray(c["feats"][u], dtype=np.float32)
        d = kaldi_hmm_gmm.DecodableAmDiagGmmScaled(c["am"], c["tm"], f, cfg.acoustic_scale)
        dec.decode(d)
        reached = bool(dec.reached_final())
        ok, lat = dec.get_best_path(use_final_probs=True)
        words: List[int] = []
        if ok:
            ok2, _, osyms, _ = kaldifst.get_linear_symbol_sequence(lat)
            if ok2:
                words = [w for w in osyms if w != 0]
        out.append((u, words, reached, len(f)))
    return out


def decode_corpus(model, hclg, feats: Dict[str, np.ndarray], id2word: Dict[int, str],
                  config: GmmDecodeConfig = GmmDecodeConfig(), nj: int = 1,
                  ref: Optional[Dict[str, List[str]]] = None) -> GmmDecodeResult:
    """Decode every utterance of ``feats``; with ``ref`` also the WER."""
    from asrkit.gmm.align import split_by_frames

    t0 = time.perf_counter()
    _CTX.update(cfg=config, hclg=hclg, feats=feats, am=model.am, tm=model.transition_model)
    utts = list(feats)
    parts = split_by_frames(utts, {u: len(feats[u]) for u in utts}, nj)
    rows = []
    try:
        if len(parts) <= 1:
            for p in parts:
                rows += _decode_part(p)
        else:
            with mp.get_context("fork").Pool(len(parts)) as pool:
                for r in pool.imap(_decode_part, parts):
                    rows += r
    finally:
        _CTX.clear()
    res = GmmDecodeResult()
    for u, words, reached, n in rows:
        res.hyps[u] = [id2word.get(w, f"<id{w}>") for w in words]
        res.frames += n
        if not reached:
            res.not_final.append(u)
    res.seconds = time.perf_counter() - t0
    if res.not_final:
        log.warning("%d utterances reached no final state (best partial path kept): %s", len(res.not_final),
                    " ".join(res.not_final[:10]))
    if ref is not None:
        res.wer, res.wer_line = score(ref, res.hyps)
    log.info("decoded %d utterances, %d frames in %.2f s (%.0f frames/s)%s", len(res.hyps), res.frames, res.seconds,
             res.frames / max(res.seconds, 1e-9), f"; {res.wer_line}" if res.wer_line else "")
    return res


def score(ref: Dict[str, List[str]], hyps: Dict[str, List[str]]):
    """(WER %, Kaldi's %WER line) over the utterances of ``ref`` (missing hypotheses count as deletions)."""
    try:
        from asrkit.decode.score import compute_wer

        w = compute_wer(ref, hyps, bootstrap=False)
        return float(w.wer), w.wer_line()
    except ImportError:  # pragma: no cover - the scoring module is a sibling package
        import kaldialign

        e = n = ins = dels = subs = 0
        for u, r in ref.items():
            st = kaldialign.edit_distance(r, hyps.get(u, []))
            ins, dels, subs = ins + st["ins"], dels + st["del"], subs + st["sub"]
            n += len(r)
        e = ins + dels + subs
        wer = 100.0 * e / max(n, 1)
        return wer, f"%WER {wer:.2f} [ {e} / {n}, {ins} ins, {dels} del, {subs} sub ]"


def write_decode_dir(res: GmmDecodeResult, out_dir: PathLike) -> Path:
    from asrkit.utils.atomic import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "hyp.txt", "".join(f"{u} {' '.join(w)}".rstrip() + "\n" for u, w in res.hyps.items()))
    if res.wer_line:
        atomic_write_text(out / "wer", res.wer_line + "\n")
    d = asdict(res)
    d.pop("hyps")
    atomic_write_text(out / "summary.json", json.dumps(d, indent=1) + "\n")
    return out
