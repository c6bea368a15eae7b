"""Per-transition-id lookups of a ``kaldi_hmm_gmm.TransitionModel`` (pdf, phone, HMM state, self-loop).

:class:`TransitionInfo` is what GMM training, alignment and stage 6 read; :func:`transition_arrays` is
the subset the graph directory stores for the decoders (``graph/transitions.npz``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

import numpy as np


@dataclass
class TransitionInfo:
    """numpy lookups indexed by transition id (index 0 unused, set to -1 / False)."""

    pdf: np.ndarray
    phone: np.ndarray
    hmm_state: np.ndarray
    pdf_class: np.ndarray
    is_self_loop: np.ndarray
    trans_index: np.ndarray  # index of the transition within its transition state
    num_pdfs: int

    @classmethod
    def from_model(cls, tm) -> "TransitionInfo":
        n = tm.num_transition_ids
        pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int32).copy()
        if len(pdf) != n + 1:
            raise RuntimeError(f"transition_id_to_pdf_array has {len(pdf)} entries, expected {n + 1}")
        pdf[0] = -1
        id2state = np.asarray(tm.id2state, dtype=np.int64)
        state2id = np.asarray(tm.state2id, dtype=np.int64)
        tuples = np.asarray([t.__getstate__() for t in tm.tuples], dtype=np.int32).reshape(-1, 4)
        topo = tm.topo
        phone = np.full(n + 1, -1, dtype=np.int32)
        hmm_state = np.full(n + 1, -1, dtype=np.int32)
        pdf_class = np.full(n + 1, -1, dtype=np.int32)
        self_loop = np.zeros(n + 1, dtype=bool)
        trans_index = np.full(n + 1, -1, dtype=np.int32)
        entries: Dict[int, Any] = {}
        for tid in range(1, n + 1):
            st = int(id2state[tid])
            ph, hs = int(tuples[st - 1, 0]), int(tuples[st - 1, 1])
            phone[tid], hmm_state[tid] = ph, hs
            self_loop[tid] = bool(tm.is_self_loop(tid))
            trans_index[tid] = tid - int(state2id[st])
            if ph not in entries:
                entries[ph] = topo.topology_for_phone(ph)
            s = entries[ph][hs]
            pdf_class[tid] = s.self_loop_pdf_class if self_loop[tid] else s.forward_pdf_class
        return cls(pdf, phone, hmm_state, pdf_class, self_loop, trans_index, int(tm.num_pdfs))

    def phone_starts(self, ali: np.ndarray) -> np.ndarray:
        """bool [T]: frames that begin a phone instance.

        In alignments of the graphs compiled here (and mkgraph's, both ``reorder``-ed) a visit of k
        frames to an HMM state carries the state's forward transition on its first frame and self-loops
        on the other k-1; so a phone instance begins where the HMM state is 0 and the transition is not
        a self-loop (docs/stack.md), which also separates two instances of the same phone.
        """
        ali = np.asarray(ali, dtype=np.int64)
        if len(ali) == 0:
            return np.zeros(0, dtype=bool)
        start = (self.hmm_state[ali] == 0) & ~self.is_self_loop[ali]
        start[0] = True
        return start


def transition_arrays(trans_model) -> Dict[str, np.ndarray]:
    """Per transition id (index 0 unused: pdf -1, phone 0): pdf, phone, self-loop flag; what the decoder needs."""
    info = TransitionInfo.from_model(trans_model)
    tid2phone = info.phone.copy()
    tid2phone[0] = 0
    return {"tid2pdf": info.pdf, "tid2phone": tid2phone, "is_self_loop": info.is_self_loop,
            "num_pdfs": np.int64(info.num_pdfs)}
