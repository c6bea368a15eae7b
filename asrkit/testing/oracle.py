"""A stand-in model for a toy lang dir, and oracle alignments and scores through its graphs: decoding
tests whose right answer is known, without training anything."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from asrkit.fst import kaldi_hmm_gmm, kaldifst
from asrkit.graph.hclg import Lang
from asrkit.hmm import model_from_tree_and_topo, monophone_tree, read_topo, widen_monophone_tree

PathLike = Union[str, Path]


def make_toy_model(lang_dir: PathLike, context_width: int = 1):
    """Stand-in model for a toy lang dir: monophone tree, or widened to N=3/P=1."""
    topo = read_topo(Path(lang_dir) / "topo")
    tree = monophone_tree(topo)
    if context_width == 3:
        tree = widen_monophone_tree(tree, 3, 1)
    elif context_width != 1:
        raise ValueError("context_width 1 or 3")
    return model_from_tree_and_topo(tree, topo)


def make_oracle_alignment(model, lang_dir: PathLike, sentence: str, num_frames: int, seed: int = 0) -> List[int]:
    """A random transition-id path of ``num_frames`` frames through the training graph of ``sentence``."""
    lang = Lang.read(lang_dir)
    tgc = kaldi_hmm_gmm.TrainingGraphCompiler(model.transition_model, model.tree, lang.L, lang.disambig_phones,
                                              kaldi_hmm_gmm.TrainingGraphCompilerOptions())
    fst = tgc.compile_graph_from_text([lang.words[w] for w in sentence.split()])
    ok, path = kaldifst.equal_align(fst, num_frames, seed)
    if not ok:
        raise ValueError(f"no {num_frames}-frame path for {sentence!r}")
    ok, tids, _, _ = kaldifst.get_linear_symbol_sequence(path)
    return list(tids)


def make_oracle_scores(tid2pdf, tids: Sequence[int], num_pdfs: int, off: float = -8.0,
                       seed: Optional[int] = None) -> np.ndarray:
    """[T, num_pdfs] scores: 0 for the pdf of each frame's transition id, ``off`` elsewhere (plus noise)."""
    tids = np.asarray(tids, dtype=np.int64)
    if seed is None:
        sc = np.full((len(tids), num_pdfs), off, dtype=np.float32)
    else:
        rng = np.random.default_rng(seed)
        sc = (off + rng.standard_normal((len(tids), num_pdfs))).astype(np.float32)
    sc[np.arange(len(tids)), np.asarray(tid2pdf)[tids]] = 0.0
    return sc
