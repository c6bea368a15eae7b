"""The HMM layer (Kaldi's src/hmm): topologies, transition models, tree files and the stored model format.

- :mod:`.topology`: Kaldi topology text (``data/lang`` three-state, ``data/lang_senone`` one-state) and
  :func:`read_topo` (``HmmTopology`` from a file or its text).
- :mod:`.tree_io`: a ``tree`` file's bytes <-> ``kaldi_hmm_gmm.ContextDependency`` (:func:`read_tree`,
  :func:`write_tree`, :func:`tree_from_bytes`, :func:`tree_to_bytes`), Kaldi's :func:`monophone_tree`.
- :mod:`.transitions`: per-transition-id lookups (:class:`TransitionInfo`, :func:`transition_arrays`).
- :mod:`.model`: the ``asrkit-hmm-v1`` model file (:func:`save_model`, :func:`load_model`,
  :class:`HmmModel`) and the models the graph builder accepts (:func:`load_any_model`).

Trees are always ``ContextDependency`` objects here; the Python tree builder (:mod:`asrkit.tree`, above
this layer) converts its ``ContextTree`` with ``asrkit.tree.to_kaldi`` / ``kaldi_to_tree``. The FST stack
is imported through :mod:`asrkit.fst`; torch only when a model file is saved or loaded.
"""
from asrkit.hmm.model import (MODEL_FORMAT, HmmModel, load_any_model, load_model, model_from_tree_and_topo,
                              save_model, standin_model)
from asrkit.hmm.topology import (make_gmm_topo, make_senone_topo, make_topo, num_emitting_states,
                                 read_topo)
from asrkit.hmm.transitions import TransitionInfo, transition_arrays
from asrkit.hmm.tree_io import (monophone_tree, read_tree, tree_from_bytes, tree_to_bytes,
                                widen_monophone_tree, write_tree)

__all__ = [
    "MODEL_FORMAT", "HmmModel", "load_any_model", "load_model", "model_from_tree_and_topo", "save_model",
    "standin_model", "make_gmm_topo", "make_senone_topo", "make_topo", "num_emitting_states", "read_topo",
    "TransitionInfo", "transition_arrays", "monophone_tree", "read_tree", "tree_from_bytes", "tree_to_bytes",
    "widen_monophone_tree", "write_tree",
]
