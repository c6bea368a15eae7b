"""GMM-HMM systems at 10 ms: monophone from a flat start, triphone from its alignments, forced alignment,
decoding with kaldi_hmm_gmm's decoder, alignment-quality measurement.

Import cost: kaldi_hmm_gmm / kaldifst (through :mod:`asrkit.fst`, in the safe order); torch and lhotse
only when models are saved/loaded or cuts are read.
"""
from asrkit.gmm.accumulate import GmmStats, UpdateConfig, accumulate, update_model
from asrkit.gmm.align import (AlignOptions, AlignResult, align_corpus, align_decodable, align_scores, align_utterance,
                              equal_align, run_jobs)
from asrkit.gmm.boundaries import (BoundaryStats, alignment_segments, compare_boundaries, corpus_boundaries,
                                   read_ctm, word_segments)
from asrkit.gmm.data import Corpus, FeatConfig, load_corpus, make_features
from asrkit.gmm.graphs import GraphCompiler, LangInfo
from asrkit.gmm.model import GmmModel, boost_silence, init_mono
from asrkit.gmm.train_mono import MonoConfig, train_mono
from asrkit.gmm.train_tri import AlignmentConverter, TriConfig, train_tri, tree_stats
from asrkit.gmm.trainer import load_alignments, save_alignments

__all__ = [
    "GmmStats", "UpdateConfig", "accumulate", "update_model",
    "AlignOptions", "AlignResult", "align_corpus", "align_decodable", "align_scores", "align_utterance",
    "equal_align", "run_jobs",
    "BoundaryStats", "alignment_segments", "compare_boundaries", "corpus_boundaries", "read_ctm", "word_segments",
    "Corpus", "FeatConfig", "load_corpus", "make_features",
    "GraphCompiler", "LangInfo",
    "GmmModel", "boost_silence", "init_mono",
    "MonoConfig", "train_mono", "AlignmentConverter", "TriConfig", "train_tri", "tree_stats",
    "load_alignments", "save_alignments",
]
