"""HCLG decoding graphs (Kaldi's mkgraph.sh) for any tree, transition model and topology.

The models, trees and topologies it reads are :mod:`asrkit.hmm`'s.
"""
from asrkit.graph.hclg import EmptyGraphError, HclgConfig, HclgInfo, Lang, make_graph_dir, make_hclg

__all__ = ["EmptyGraphError", "HclgConfig", "HclgInfo", "Lang", "make_graph_dir", "make_hclg"]
