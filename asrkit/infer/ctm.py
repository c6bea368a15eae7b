"""Word timings (CTM) from a decoded path: its phone segments matched to the words' pronunciations.

The phones are word-position independent (docs: asrkit.lang), so word boundaries are not in the phone
sequence itself; as Kaldi's ``lattice-align-words-lexicon``, the path's phones are matched against the
pronunciations of its words in order, optional silence allowed between words. A phone starts on a frame
whose transition leaves HMM state 0 other than by its self-loop (docs/stack.md): with the senone graph's
one-state topology, every transition that is not a self-loop.

CTM lines (Kaldi's): ``<utt> 1 <start> <duration> <word>``, times in seconds with 30 ms frames.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from asrkit.features.stack import STACKED_FRAME_SHIFT
from asrkit.lang.lexicon import SIL_PHONE

Segment = Tuple[str, int, int]  # phone, first frame, end frame (exclusive)


def read_lexicon_prons(path: Union[str, Path]) -> Dict[str, List[Tuple[str, ...]]]:
    """``word phone phone ...`` lines -> every pronunciation of each word."""
    prons: Dict[str, List[Tuple[str, ...]]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        f = line.split()
        if len(f) >= 2:
            prons.setdefault(f[0], []).append(tuple(f[1:]))
    return prons


def phone_starts(trans_model) -> np.ndarray:
    """Per transition id: does a phone start there (HMM state 0, not its self-loop; docs/stack.md)."""
    n = trans_model.num_transition_ids
    out = np.zeros(n + 1, dtype=bool)
    for t in range(1, n + 1):
        out[t] = trans_model.transition_ids_is_start_of_phone(t) and not trans_model.is_self_loop(t)
    return out


def phone_segments(tids: Sequence[int], tid2phone: np.ndarray, starts: np.ndarray,
                   id2phone: Dict[int, str]) -> List[Segment]:
    """Per-frame transition ids -> (phone, start, end) segments; ``starts`` from :func:`phone_starts`."""
    segs: List[Segment] = []
    for t, tid in enumerate(tids):
        if not segs or starts[tid]:
            segs.append((id2phone[int(tid2phone[tid])], t, t + 1))
        else:
            p, s, _ = segs[-1]
            segs[-1] = (p, s, t + 1)
    return segs


def align_words(words: Sequence[str], segs: Sequence[Segment], prons: Dict[str, List[Tuple[str, ...]]],
                silence: str = SIL_PHONE) -> Optional[List[Tuple[str, int, int]]]:
    """(word, start frame, end frame) for each word, or None if the phones do not spell the words."""
    phones = [s[0] for s in segs]
    goal = (len(phones), len(words))
    # forward search over (phones consumed, words placed); back-pointers give the word spans
    back: Dict[Tuple[int, int], Optional[Tuple[Tuple[int, int], Optional[Tuple[str, int, int]]]]] = {(0, 0): None}
    frontier = [(0, 0)]
    while frontier and goal not in back:
        nxt = []
        for i, j in frontier:
            steps = []
            if i < len(phones) and phones[i] == silence:
                steps.append(((i + 1, j), None))
            if j < len(words):
                for pron in prons.get(words[j], []):
                    k = i + len(pron)
                    if k <= len(phones) and tuple(phones[i:k]) == pron:
                        steps.append(((k, j + 1), (words[j], segs[i][1], segs[k - 1][2])))
            for state, word in steps:
                if state not in back:
                    back[state] = ((i, j), word)
                    nxt.append(state)
        frontier = nxt
    if goal not in back:
        return None
    out, state = [], goal
    while back[state] is not None:
        state, word = back[state]
        if word is not None:
            out.append(word)
    return out[::-1]


def ctm_lines(utt: str, timed: Sequence[Tuple[str, int, int]], frame_shift: float = STACKED_FRAME_SHIFT) -> List[str]:
    return [f"{utt} 1 {s * frame_shift:.2f} {(e - s) * frame_shift:.2f} {w}" for w, s, e in timed]
