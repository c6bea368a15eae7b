"""Training graphs (Kaldi's compile-train-graphs) from a lang dir's lexicon FST and word ids.

Graphs are compiled **without transition probabilities** (``TrainingGraphCompilerOptions(
transition_scale=0.0, self_loop_scale=0.0)``, docs/stack.md): the current model's probabilities are
added at alignment time (``add_transition_probs``), as gmm-align-compiled does with its
``--transition-scale=1.0 --self-loop-scale=0.1``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from asrkit.fst import kaldi_hmm_gmm, kaldifst
from asrkit.graph.hclg import read_int_list, read_symbol_table

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass
class LangInfo:
    """What the GMM system needs from a Kaldi lang dir."""

    path: Path
    phones: Dict[str, int]
    words: Dict[str, int]
    disambig: List[int]
    silence: List[int]
    topo_text: str
    oov: Optional[int] = None
    L: object = field(default=None, repr=False)

    @classmethod
    def read(cls, lang_dir: PathLike) -> "LangInfo":
        d = Path(lang_dir)
        for name in ("phones.txt", "words.txt", "topo", "phones/disambig.int"):
            if not (d / name).exists():
                raise FileNotFoundError(f"lang dir {d} lacks {name}")
        lfile = d / "L.fst" if (d / "L.fst").exists() else d / "L_disambig.fst"
        if not lfile.exists():
            raise FileNotFoundError(f"lang dir {d} has neither L.fst nor L_disambig.fst")
        L = kaldifst.StdVectorFst.read(str(lfile))
        kaldifst.arcsort(L, sort_type="olabel")
        if (d / "phones/silence.int").exists():
            sil = read_int_list(d / "phones/silence.int")
        elif (d / "phones/silence.csl").exists():
            sil = read_int_list(d / "phones/silence.csl")
        else:
            sil = []
            log.warning("lang dir %s lists no silence phones (phones/silence.int)", d)
        oov = int((d / "oov.int").read_text().split()[0]) if (d / "oov.int").exists() else None
        return cls(d, read_symbol_table(d / "phones.txt"), read_symbol_table(d / "words.txt"), read_int_list(d / "phones/disambig.int"),
                   sil, (d / "topo").read_text(), oov, L)

    def word_ids(self, words: Sequence[str], utt: str = "") -> Tuple[List[int], int]:
        """Word ids (OOVs mapped to oov.int); returns (ids, number of OOVs). Raises without oov.int."""
        ids, n_oov = [], 0
        for w in words:
            i = self.words.get(w)
            if i is None:
                if self.oov is None:
                    raise KeyError(f"utterance {utt}: word {w!r} is not in {self.path}/words.txt (no oov.int)")
                i, n_oov = self.oov, n_oov + 1
            ids.append(i)
        return ids, n_oov


class GraphCompiler:
    """Compiles per-utterance training graphs for one model (tree + transition model)."""

    def __init__(self, model, lang: LangInfo):
        opts = kaldi_hmm_gmm.TrainingGraphCompilerOptions(transition_scale=0.0, self_loop_scale=0.0)
        self.lang = lang
        self.compiler = kaldi_hmm_gmm.TrainingGraphCompiler(model.transition_model, model.tree, lang.L,
                                                            lang.disambig, opts)

    def compile(self, words: Sequence[str], utt: str = ""):
        ids, _ = self.lang.word_ids(words, utt)
        return self.compiler.compile_graph_from_text(ids)

    def compile_all(self, text: Dict[str, List[str]]) -> Tuple[Dict[str, object], Dict[str, str]]:
        """{utt: graph} and {utt: reason} for utterances whose graph could not be made."""
        graphs, failed = {}, {}
        n_oov = 0
        for utt, words in text.items():
            try:
                ids, k = self.lang.word_ids(words, utt)
                n_oov += k
                g = self.compiler.compile_graph_from_text(ids)
                if g.num_states == 0:
                    raise ValueError("empty training graph (words without pronunciations?)")
                graphs[utt] = g
            except Exception as e:  # counted and reported, never silently dropped
                failed[utt] = f"graph compilation failed: {e}"
                log.warning("utterance %s: %s", utt, failed[utt])
        if n_oov:
            log.info("training graphs: %d OOV words mapped to the OOV word", n_oov)
        return graphs, failed
