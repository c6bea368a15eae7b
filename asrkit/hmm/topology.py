"""HMM topologies in Kaldi's text format.

- ``data/lang`` (GMM system, 10 ms frames): Kaldi's standard three-state left-to-right topology
  (each emitting state has a self-loop 0.75 and a forward transition 0.25). By default silence phones
  get the same three-state topology (``sil_states=3``): one number of pdf-classes for every phone keeps
  the tree building and the 10 ms → 30 ms alignment conversion simple. ``sil_states=5`` gives Kaldi's
  default five-state ergodic silence model instead.
- ``data/lang_senone`` (senone networks, 30 ms frames): one emitting state with a self-loop (0.5/0.5)
  for every phone.

Topologies are checked by reading them back with :func:`read_topo` (``kaldi_hmm_gmm.HmmTopology.read``
takes the text itself, not a file name; :func:`read_topo` takes either).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from asrkit.fst import kaldi_hmm_gmm


def _entry(phones: Sequence[int], states: Sequence[str]) -> str:
    return (
        "<TopologyEntry>\n<ForPhones>\n" + " ".join(str(p) for p in phones) + "\n</ForPhones>\n"
        + "".join(s + "\n" for s in states)
        + "</TopologyEntry>\n"
    )


def left_to_right_states(num_states: int, self_loop: float = 0.75) -> list:
    """``num_states`` emitting states, each with a self-loop and a transition to the next, then a final state."""
    if num_states < 1:
        raise ValueError("a topology needs at least one emitting state")
    fwd = 1.0 - self_loop
    states = [
        f"<State> {i} <PdfClass> {i} <Transition> {i} {self_loop:g} <Transition> {i + 1} {fwd:g} </State>"
        for i in range(num_states)
    ]
    states.append(f"<State> {num_states} </State>")
    return states


def kaldi_silence_states(num_states: int = 5) -> list:
    """Kaldi's default silence topology (utils/gen_topo.pl): ergodic middle states."""
    if num_states < 3:
        raise ValueError("Kaldi's silence topology needs at least 3 states")
    p = 1.0 / (num_states - 1)
    states = []
    # state 0 goes to every state but the last emitting one
    trans = " ".join(f"<Transition> {j} {p:g}" for j in range(num_states - 1))
    states.append(f"<State> 0 <PdfClass> 0 {trans} </State>")
    for i in range(1, num_states - 1):
        trans = " ".join(f"<Transition> {j} {p:g}" for j in range(1, num_states))
        states.append(f"<State> {i} <PdfClass> {i} {trans} </State>")
    last = num_states - 1
    states.append(f"<State> {last} <PdfClass> {last} <Transition> {last} 0.75 <Transition> {num_states} 0.25 </State>")
    states.append(f"<State> {num_states} </State>")
    return states


def make_topo(
    nonsil_phones: Sequence[int],
    sil_phones: Sequence[int],
    num_states: int = 3,
    sil_states: int = 3,
    self_loop: float = 0.75,
) -> str:
    """Kaldi topology text. Silence gets Kaldi's ergodic model only when ``sil_states`` differs from 3."""
    entries = []
    if sil_states == num_states:
        entries.append(_entry(sorted(list(nonsil_phones) + list(sil_phones)), left_to_right_states(num_states, self_loop)))
    else:
        entries.append(_entry(sorted(nonsil_phones), left_to_right_states(num_states, self_loop)))
        entries.append(_entry(sorted(sil_phones), kaldi_silence_states(sil_states)))
    return "<Topology>\n" + "".join(entries) + "</Topology>\n"


def make_gmm_topo(nonsil_phones: Sequence[int], sil_phones: Sequence[int], sil_states: int = 3) -> str:
    """The three-state topology of ``data/lang``."""
    return make_topo(nonsil_phones, sil_phones, num_states=3, sil_states=sil_states, self_loop=0.75)


def make_senone_topo(phones: Sequence[int]) -> str:
    """The one-state topology of ``data/lang_senone`` (self-loop 0.5)."""
    return make_topo(phones, [], num_states=1, sil_states=1, self_loop=0.5)


def read_topo(path_or_text: Union[str, Path]):
    """A ``kaldi_hmm_gmm.HmmTopology`` from a Kaldi ``topo`` file or its text (raises on malformed text)."""
    text = str(path_or_text)
    if "<Topology>" not in text:
        text = Path(path_or_text).read_text()
    topo = kaldi_hmm_gmm.HmmTopology()
    topo.read(text)
    return topo


def num_emitting_states(topo, phone: int) -> int:
    """Emitting states (those with a pdf-class) of ``phone`` in a parsed HmmTopology."""
    return len(topo.topology_for_phone(phone)) - 1
