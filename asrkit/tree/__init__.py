"""Phonetic decision trees (senone clustering) written in Kaldi's ``ContextDependency`` format.

Data flow: :func:`accumulate_tree_stats` (per-frame phones, pdf-classes, features -> :class:`TreeStats`,
mergeable, ``.npz``) -> :func:`make_questions` (Kaldi's cluster-phones + extra + pdf-class questions) ->
:func:`build_tree` (roots, greedy likelihood splits, post-clustering; returns :class:`BuildResult` whose
``tree`` is a :class:`ContextTree`) -> :func:`write_tree` (Kaldi binary ``tree`` file) /
:func:`to_kaldi` / :func:`load_kaldi_tree` (``kaldi_hmm_gmm.ContextDependency``).
:func:`monophone_tree` gives a context-independent tree in the same format.

Importing this package does not import the FST stack; the Kaldi-facing functions import it through
``asrkit.fst`` when called.
"""
from asrkit.tree.build import BuildResult, RootSpec, TreeBuildConfig, build_tree, default_roots, read_roots
from asrkit.tree.event_map import ConstantNode, ContextTree, SplitNode, TableNode
from asrkit.tree.kaldi_format import (context_dependency_bytes, kaldi_to_tree, load_kaldi_tree, read_tree,
                                      to_kaldi, tree_from_bytes, write_tree)
from asrkit.tree.mono import monophone_tree
from asrkit.tree.questions import (Questions, cluster_phones, default_pdf_class_questions, make_questions,
                                   read_sets, write_sets)
from asrkit.tree.stats import (PDF_CLASS_KEY, TreeStats, accumulate_tree_stats, frame_contexts,
                               gauss_objf)

__all__ = [
    "BuildResult", "RootSpec", "TreeBuildConfig", "build_tree", "default_roots", "read_roots",
    "ConstantNode", "ContextTree", "SplitNode", "TableNode",
    "context_dependency_bytes", "kaldi_to_tree", "load_kaldi_tree", "read_tree", "to_kaldi",
    "tree_from_bytes", "write_tree", "monophone_tree",
    "Questions", "cluster_phones", "default_pdf_class_questions", "make_questions", "read_sets",
    "write_sets", "PDF_CLASS_KEY", "TreeStats", "accumulate_tree_stats", "frame_contexts", "gauss_objf",
]
