"""Tree bytes: Kaldi's binary ``tree`` file <-> ``kaldi_hmm_gmm.ContextDependency``.

A ``ContextDependency`` is the tree every consumer uses (``TransitionModel``, the graph builder, the
decoders). kaldi_hmm_gmm gives it no constructor: it is loaded from its pickle state, which is the bytes
Kaldi writes in binary mode without the ``\\0B`` header (layout: :mod:`asrkit.tree.kaldi_format`, which
builds trees in Python and serialises them to these bytes). Files are written with the header, as Kaldi
writes them, and read with or without it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from asrkit.fst import kaldi_hmm_gmm
from asrkit.utils.atomic import atomic_write_bytes

PathLike = Union[str, os.PathLike]
BINARY_HEADER = b"\x00B"
_MAGIC = b"ContextDependency \x04"  # the token, then an int32 marked 0x04 (a text tree has a digit there)


def tree_from_bytes(data: bytes, where: str = "<bytes>"):
    """A ``ContextDependency`` from Kaldi's binary layout (with or without the ``\\0B`` header)."""
    if data.startswith(BINARY_HEADER):
        data = data[len(BINARY_HEADER):]
    if not data.startswith(_MAGIC):
        raise ValueError(f"{where}: not a binary Kaldi ContextDependency (tree); text trees are not supported")
    cd = kaldi_hmm_gmm.ContextDependency.__new__(kaldi_hmm_gmm.ContextDependency)
    try:
        cd.__setstate__((np.frombuffer(data, dtype=np.int8).tolist(),))
    except RuntimeError as e:  # Kaldi's reader: the message's last line says what it expected
        raise ValueError(f"{where}: a corrupt binary Kaldi tree: {str(e).strip().splitlines()[-1]}") from None
    return cd


def tree_to_bytes(tree) -> bytes:
    """Kaldi's binary layout of a ``ContextDependency``, with the ``\\0B`` header (a ``tree`` file's bytes)."""
    return BINARY_HEADER + np.asarray(tree.__getstate__()[0], dtype=np.int8).tobytes()


def read_tree(path: PathLike):
    """Load a Kaldi binary tree file (ours or Kaldi's) as a ``ContextDependency``."""
    return tree_from_bytes(Path(path).read_bytes(), str(path))


def write_tree(tree, path: PathLike) -> None:
    """Write a ``ContextDependency`` as a Kaldi binary tree file (header included), atomically."""
    atomic_write_bytes(path, tree_to_bytes(tree))


def monophone_tree(topo, shared_phones=None):
    """Kaldi's monophone ``ContextDependency`` (N=1, P=0) for an ``HmmTopology``: one pdf per (phone,
    pdf-class), or per (phone set, pdf-class) with ``shared_phones`` (lists of phones sharing pdfs)."""
    p2n = topo.get_phone_to_num_pdf_classes()
    if shared_phones is None:
        return kaldi_hmm_gmm.monophone_context_dependency(topo.phones, p2n)
    return kaldi_hmm_gmm.monophone_context_dependency_shared([list(s) for s in shared_phones], p2n)


def widen_monophone_tree(tree, context_width: int = 3, central_position: int = 1):
    """A tree of context width N / central position P whose pdfs still depend only on the central phone.

    Rewrites a monophone tree's binary layout (N=1, P=0, top ``TE`` on key 0) to N, P and top key P:
    the same pdfs, but graphs are built with a real context-dependency transducer (``compose_context``
    with N=3, P=1), as they will be for a triphone tree. For tests and benchmarks.
    """
    data = tree_to_bytes(tree)[len(BINARY_HEADER):]
    head = b"ContextDependency \x04"
    if not data.startswith(head) or tree.context_width != 1:
        raise ValueError("expected a monophone tree (N=1)")
    p = len(head)
    data = bytearray(data)
    data[p:p + 4] = int(context_width).to_bytes(4, "little", signed=True)
    assert data[p + 4] == 4
    data[p + 5:p + 9] = int(central_position).to_bytes(4, "little", signed=True)
    rest = bytes(data[p + 9:])
    te = b"ToPdf TE \x04"
    if not rest.startswith(te):
        raise ValueError("unexpected monophone tree layout")
    q = p + 9 + len(te)
    data[q:q + 4] = int(central_position).to_bytes(4, "little", signed=True)
    return tree_from_bytes(bytes(data))
