"""HCLG decoding graphs (Kaldi's mkgraph.sh) for any tree, transition model and topology."""
from asrkit.graph.hclg import EmptyGraphError, HclgConfig, HclgInfo, Lang, make_graph_dir, make_hclg
from asrkit.graph.tree_utils import (HmmModel, load_any_model, load_model, model_from_tree_and_topo,
                                     monophone_tree, read_topo, read_tree, save_model, standin_model,
                                     tree_from_bytes, tree_to_bytes, widen_monophone_tree)

__all__ = ["EmptyGraphError", "HclgConfig", "HclgInfo", "Lang", "make_graph_dir", "make_hclg", "HmmModel",
           "load_any_model", "load_model", "model_from_tree_and_topo", "monophone_tree", "read_topo",
           "read_tree", "save_model", "standin_model", "tree_from_bytes", "tree_to_bytes",
           "widen_monophone_tree"]
