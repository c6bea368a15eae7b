"""Phonetic decision trees (senone clustering) in Python, written in Kaldi's ``ContextDependency`` layout.

Pure algorithm (Kaldi's src/tree): no stage driver lives here (stage 6 is :mod:`asrkit.senone`).

Data flow: :func:`accumulate_tree_stats` (per-frame phones, pdf-classes, features -> :class:`TreeStats`,
mergeable, ``.npz``) -> :func:`make_questions` (Kaldi's cluster-phones + extra + pdf-class questions) ->
:func:`build_tree` (roots, greedy likelihood splits, post-clustering; returns :class:`BuildResult` whose
``tree`` is a :class:`ContextTree`) -> :func:`to_kaldi` (``kaldi_hmm_gmm.ContextDependency``, the tree
type of every other layer; files through :func:`asrkit.hmm.write_tree` / :func:`asrkit.hmm.read_tree`)
or :func:`context_dependency_bytes`; :func:`kaldi_to_tree` converts back.
:func:`monophone_context_tree` gives a context-independent tree in the same layout.
"""
from asrkit.tree.build import BuildResult, RootSpec, TreeBuildConfig, build_tree, default_roots, read_roots
from asrkit.tree.event_map import ConstantNode, ContextTree, SplitNode, TableNode
from asrkit.tree.kaldi_format import context_dependency_bytes, context_tree_from_bytes, kaldi_to_tree, to_kaldi
from asrkit.tree.mono import monophone_context_tree
from asrkit.tree.questions import (Questions, cluster_phones, default_pdf_class_questions, make_questions,
                                   read_sets, write_sets)
from asrkit.tree.stats import (PDF_CLASS_KEY, TreeStats, accumulate_tree_stats, frame_contexts,
                               gauss_objf)

__all__ = [
    "BuildResult", "RootSpec", "TreeBuildConfig", "build_tree", "default_roots", "read_roots",
    "ConstantNode", "ContextTree", "SplitNode", "TableNode",
    "context_dependency_bytes", "context_tree_from_bytes", "kaldi_to_tree", "to_kaldi",
    "monophone_context_tree",
    "Questions", "cluster_phones", "default_pdf_class_questions", "make_questions", "read_sets",
    "write_sets", "PDF_CLASS_KEY", "TreeStats", "accumulate_tree_stats", "frame_contexts", "gauss_objf",
]
