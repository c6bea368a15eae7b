"""HCLG decoding graphs for any tree, transition model and topology (Kaldi's utils/mkgraph.sh).

Recipe (docs/stack.md): L_disambig gets the ``#0:#0`` self-loop if it lacks it (so G's backoff ``#0``
passes), ``LG = compose(L, G)``, ``determinize_star`` (log semiring), ``minimize_encoded``;
``CLG = compose_context(disambig phones, N, P, LG)``; ``H = get_h_transducer(ilabels, tree, model,
transition_scale)``; ``HCLGa = compose(H, CLG)``, ``determinize_star``, disambiguation transition ids
replaced by epsilon, ``rmepsilon``, ``minimize_encoded``; ``HCLG = add_self_loops(self_loop_scale=0.1,
reorder=True)``.

Graph directory (``exp/<system>/graph/``)::

    HCLG.fst          kaldifst binary (StdVectorFst); input labels transition ids, output labels word ids
    words.txt         the lang dir's word table
    phones.txt        the lang dir's phone table
    transitions.npz   tid2pdf, tid2phone, is_self_loop (index = transition id, 0 unused), num_pdfs
    disambig_tid.int  the transition-id disambiguation symbols that were removed
    info.json         states, arcs, build seconds, sizes of the intermediate graphs, N, P, options
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from asrkit.fst import kaldi_hmm_gmm, kaldifst
from asrkit.graph import fstutil
from asrkit.hmm import HmmModel, transition_arrays
from asrkit.utils.atomic import atomic_path, mark_done

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


class EmptyGraphError(RuntimeError):
    """A composition left no successful path (words of G not in L, wrong symbol tables, ...)."""


@dataclass
class HclgConfig:
    transition_scale: float = 1.0
    self_loop_scale: float = 0.1
    reorder: bool = True
    use_log: bool = True  # mkgraph.sh determinizes with --use-log=true
    max_states: int = -1  # abort determinization beyond this many states (-1: no limit)
    minimize: bool = True
    delta: float = 1.0 / 1024
    # Kaldi removes only the epsilons it can remove locally (fstrmepslocal); kaldifst has only the full
    # rmepsilon, which multiplied the arcs by 5-7x on real graphs. The decoders follow epsilon arcs, so
    # by default the epsilons left by removing disambiguation ids stay.
    rmepsilon: bool = False


@dataclass
class HclgInfo:
    states: int = 0
    arcs: int = 0
    build_seconds: float = 0.0
    context_width: int = 0
    central_position: int = 0
    num_pdfs: int = 0
    num_transition_ids: int = 0
    stages: Dict[str, Dict[str, float]] = field(default_factory=dict)
    config: Dict[str, float] = field(default_factory=dict)


def read_symbol_table(path: PathLike) -> Dict[str, int]:
    table: Dict[str, int] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) != 2:
            raise ValueError(f"{path}:{n}: expected 'symbol id', got {line!r}")
        table[f[0]] = int(f[1])
    return table


def read_int_list(path: PathLike) -> List[int]:
    """Kaldi's ``.int`` files (ids separated by white space), or a ``.csl`` (colon-separated) list."""
    return [int(x) for x in Path(path).read_text().replace(":", " ").split()]


def _read_fst(path: PathLike, what: str):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    fst = kaldifst.StdVectorFst.read(str(path))
    if fst is None:
        raise ValueError(f"could not read {what} {path} as a kaldifst StdVectorFst")
    return fst


@dataclass
class Lang:
    """What the graph builder needs from a Kaldi lang dir."""

    L: object
    phones: Dict[str, int]
    words: Dict[str, int]
    disambig_phones: List[int]
    path: Optional[Path] = None

    @classmethod
    def read(cls, lang_dir: PathLike) -> "Lang":
        d = Path(lang_dir)
        for name in ("phones.txt", "words.txt", "L_disambig.fst", "phones/disambig.int"):
            if not (d / name).exists():
                raise FileNotFoundError(f"lang dir {d} lacks {name}")
        return cls(_read_fst(d / "L_disambig.fst", "L_disambig.fst"), read_symbol_table(d / "phones.txt"),
                   read_symbol_table(d / "words.txt"), read_int_list(d / "phones/disambig.int"), d)


def _stage(info: HclgInfo, name: str, fst, t0: float) -> float:
    s, a = fstutil.fst_size(fst)
    t = time.perf_counter()
    info.stages[name] = {"states": s, "arcs": a, "seconds": round(t - t0, 4)}
    log.info("%-6s %9d states %10d arcs  %.2f s", name, s, a, t - t0)
    return t


def _check_nonempty(fst, what: str, hint: str) -> None:
    if fstutil.is_empty(fst):
        raise EmptyGraphError(f"{what} is empty (no successful path): {hint}")


def compose_lg(L, G, wdisambig_phone: int, wdisambig_word: int, config: HclgConfig = HclgConfig()):
    """det(min(L o G)) with the ``#0`` self-loop ensured on L (L is copied, not changed)."""
    L = L.copy()
    if not fstutil.has_olabel(L, wdisambig_word):
        kaldifst.add_self_loops(L, [wdisambig_phone], [wdisambig_word])
    kaldifst.arcsort(L, sort_type="olabel")
    G = G.copy()
    kaldifst.arcsort(G, sort_type="ilabel")
    LG = kaldifst.compose(L, G)
    _check_nonempty(LG, "L o G", "no sentence of G can be spelled with L's words; is G.fst built with "
                    "this lang dir's words.txt (and G's #0 the lang's #0)?")
    if kaldifst.determinize_star(LG, delta=config.delta, max_states=config.max_states, use_log=config.use_log):
        raise RuntimeError(f"determinization of L o G stopped at max_states={config.max_states}")
    if config.minimize:
        kaldifst.minimize_encoded(LG, delta=config.delta)
    return LG


def make_hclg(L, G, model: HmmModel, disambig_phones: Sequence[int], wdisambig_phone: int,
              wdisambig_word: int, config: HclgConfig = HclgConfig()):
    """Build HCLG; returns (HCLG, info, disambig_tids). Raises EmptyGraphError for an empty graph."""
    tm, tree = model.transition_model, model.tree
    info = HclgInfo(context_width=tree.context_width, central_position=tree.central_position,
                    num_pdfs=tm.num_pdfs, num_transition_ids=tm.num_transition_ids, config=asdict(config))
    # Every phone of L must be in the topology/tree: Kaldi asserts (aborts the process) otherwise.
    l_phones = fstutil.input_labels(L) - {0} - set(disambig_phones)
    missing = sorted(l_phones - set(tm.phones))
    if missing:
        raise ValueError(f"phones {missing[:10]} of L_disambig are not in the model's topology/tree "
                         f"(model phones {min(tm.phones)}..{max(tm.phones)}): wrong lang dir for this model?")
    if wdisambig_phone not in disambig_phones:
        raise ValueError(f"#0 (phone id {wdisambig_phone}) is not among the disambiguation phones")
    t_start = t = time.perf_counter()
    LG = compose_lg(L, G, wdisambig_phone, wdisambig_word, config)
    t = _stage(info, "LG", LG, t)
    N, P = tree.context_width, tree.central_position
    CLG, ilabels = kaldifst.compose_context(list(disambig_phones), N, P, LG)
    _check_nonempty(CLG, "C o LG", "context expansion left nothing")
    kaldifst.arcsort(CLG, sort_type="ilabel")
    t = _stage(info, "CLG", CLG, t)
    H, disambig_tids = kaldi_hmm_gmm.get_h_transducer(
        ilabels, tree, tm, kaldi_hmm_gmm.HTransducerConfig(transition_scale=config.transition_scale))
    kaldifst.arcsort(H, sort_type="olabel")
    t = _stage(info, "Ha", H, t)
    HCLG = kaldifst.compose(H, CLG)
    _check_nonempty(HCLG, "H o CLG", "the tree/transition model does not cover the context windows of CLG")
    if kaldifst.determinize_star(HCLG, delta=config.delta, max_states=config.max_states,
                                 use_log=config.use_log):
        raise RuntimeError(f"determinization of H o CLG stopped at max_states={config.max_states}")
    t = _stage(info, "HCLGa0", HCLG, t)
    # mkgraph: fstrmsymbols disambig_tid.int | fstrmepslocal | fstminimizeencoded
    HCLG = fstutil.remove_input_symbols(HCLG, disambig_tids, tm.num_transition_ids)
    if config.rmepsilon:
        kaldifst.rmepsilon(HCLG)
    if config.minimize:
        kaldifst.minimize_encoded(HCLG, delta=config.delta)
    _check_nonempty(HCLG, "HCLGa", "nothing left after removing disambiguation symbols")
    t = _stage(info, "HCLGa", HCLG, t)
    HCLG = kaldi_hmm_gmm.add_self_loops(self_loop_scale=config.self_loop_scale, disambig_syms=[],
                                        reorder=config.reorder, trans_model=tm, ifst=HCLG)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    t = _stage(info, "HCLG", HCLG, t)
    info.states, info.arcs = fstutil.fst_size(HCLG)
    info.build_seconds = round(t - t_start, 4)
    return HCLG, info, list(disambig_tids)


def make_graph_dir(lang_dir: PathLike, g_fst: PathLike, model: HmmModel, out_dir: PathLike,
                   config: HclgConfig = HclgConfig(), model_desc: str = "") -> HclgInfo:
    """Build HCLG from ``lang_dir`` + ``g_fst`` + ``model`` and write the graph dir atomically."""
    lang = Lang.read(lang_dir)
    G = _read_fst(g_fst, "G.fst")
    if "#0" not in lang.phones or "#0" not in lang.words:
        raise ValueError(f"lang dir {lang_dir}: phones.txt and words.txt must both contain #0")
    max_word = max(lang.words.values())
    g_words = fstutil.input_labels(G) if G.num_states < 200000 else set()
    if g_words and max(g_words) > max_word:
        raise ValueError(f"{g_fst} uses word id {max(g_words)} beyond {lang_dir}/words.txt (max {max_word})")
    log.info("building HCLG: lang %s, G %s, %s", lang_dir, g_fst, model_desc)
    HCLG, info, disambig_tids = make_hclg(lang.L, G, model, lang.disambig_phones, lang.phones["#0"],
                                          lang.words["#0"], config)
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        HCLG.write(str(tmp / "HCLG.fst"))
        shutil.copyfile(Path(lang_dir) / "words.txt", tmp / "words.txt")
        shutil.copyfile(Path(lang_dir) / "phones.txt", tmp / "phones.txt")
        if (Path(lang_dir) / "phones").is_dir():
            shutil.copytree(Path(lang_dir) / "phones", tmp / "phones")
        arrays = transition_arrays(model.transition_model)
        np.savez(tmp / "transitions.npz", **arrays)
        (tmp / "disambig_tid.int").write_text("".join(f"{d}\n" for d in disambig_tids))
        meta = asdict(info)
        meta.update({"lang_dir": str(lang_dir), "g_fst": str(g_fst), "model": model_desc})
        (tmp / "info.json").write_text(json.dumps(meta, indent=2) + "\n")
    mark_done(out_dir)
    log.info("HCLG: %d states, %d arcs, built in %.2f s -> %s", info.states, info.arcs, info.build_seconds,
             out_dir)
    return info
