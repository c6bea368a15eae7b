"""Acoustic-scale sweep, Kaldi-style: LM weight w means acoustic scale 1/w; the best w on dev wins.

FasterDecoder gives no lattice, so each weight is one decoding pass. Layout of ``decode_dir``::

    lmwt_<w>/hyp.txt ali.txt phone_ali.txt not_final.txt summary.json   one decoding per weight
    wer_<w>, per_utt_<w>                                                scoring per weight
    best_wer                                                            the best line + its wer file
    hyp.txt ali.txt phone_ali.txt summary.json                          copies of the best weight's
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from asrkit.decode.decoder import DecodeConfig, Graph, decode_set, write_decode_dir
from asrkit.decode.score import (Normalizer, WerResult, compute_wer, weight_name, write_best_wer,
                                 write_wer_files)

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


def parse_weights(spec: str) -> List[float]:
    """``"7:17"`` (integers, inclusive), ``"7:17:2"``, or ``"8,10,12.5"``."""
    if ":" in spec:
        parts = [float(x) for x in spec.split(":")]
        lo, hi = parts[0], parts[1]
        step = parts[2] if len(parts) > 2 else 1.0
        out, w = [], lo
        while w <= hi + 1e-9:
            out.append(round(w, 6))
            w += step
        return out
    return [float(x) for x in spec.split(",") if x.strip()]


def sweep(scores: Callable[[], Iterable], graph: Union[Graph, PathLike], refs: Mapping[str, Sequence[str]],
          out_dir: PathLike, weights: Sequence[float], config: DecodeConfig = DecodeConfig(), nj: int = 1,
          normalize: Optional[Normalizer] = None, bootstrap: bool = True) -> Dict[float, WerResult]:
    """Decode and score once per LM weight; ``scores()`` returns a fresh (utt, scores) iterator."""
    if not isinstance(graph, Graph):
        graph = Graph.load(graph)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: Dict[float, WerResult] = {}
    for w in weights:
        cfg = DecodeConfig(**{**config.__dict__, "acoustic_scale": 1.0 / float(w)})
        utt_results, summary = decode_set(scores(), graph, cfg, nj=nj)
        sub = out / f"lmwt_{weight_name(w)}"
        write_decode_dir(utt_results, summary, sub)
        res = compute_wer(refs, {r.utt: r.words for r in utt_results}, normalize, bootstrap=bootstrap)
        write_wer_files(res, out, w)
        log.info("LM weight %s (acoustic scale %.4f): %s", weight_name(w), cfg.acoustic_scale, res.wer_line())
        results[w] = res
    best_w, best = write_best_wer(results, out)
    src = out / f"lmwt_{weight_name(best_w)}"
    for name in ("hyp.txt", "ali.txt", "phone_ali.txt", "not_final.txt", "summary.json"):
        shutil.copyfile(src / name, out / name)
    log.info("best LM weight %s: %s", weight_name(best_w), best.wer_line())
    return results
