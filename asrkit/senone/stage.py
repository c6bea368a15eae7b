"""Stage 6: the senone tree at 30 ms, per-frame senone targets, priors and the senone HCLG.

Inputs: the triphone GMM system at 10 ms (``exp/tri``: ``final.mdl`` and ``ali.pt``, the final alignments of
the training set), ``data/lang`` (three-state, the GMM's) and ``data/lang_senone`` (one emitting state),
the stored MFCC (``data/mfcc``) and fbank (``data/fbank``) cuts, ``data/cmvn.npz`` and ``data/lm/G.fst``.

1. **Alignments.** The training set (``train_sup``) uses ``<ali-dir>/ali.pt``; any other labelled set uses
   ``<ali-dir>/ali_<set>.pt`` if there is one, else it is aligned here with ``<ali-dir>/final.mdl`` and
   its transcripts (``asrkit.gmm.align_corpus``, per-speaker CMN as in training) and the alignments are
   kept in ``<out>/ali_<set>.pt``. The speed-perturbed copies of the training set (``train_sup_sp0.9``,
   :mod:`asrkit.data.perturb`) take this path too: Kaldi's recipes align the perturbed data dir with the
   GMM in the same way, and the tree and priors stay the training set's. Cuts whose transcript is missing or holds words missing from the
   lexicon (not in ``words.txt``: the GMM would align them to the OOV word's garbage phone), cuts without
   MFCC, and cuts whose alignment failed are **left out** of the targets: counted, logged with id and
   reason, and listed in ``<out>/left_out_<set>.txt``. A cut whose MFCC and fbank frame counts differ, or
   whose alignment length differs from them, is an error naming the cut. ``text_from`` makes a set of
   another set's features with transcripts from a separate manifest, e.g. the oracle set
   ``train_unsup_oracle`` = features of ``train_unsup`` + text of ``data/manifests/oracle/
   cuts_train_unsup.jsonl.gz`` (matched by supervision id, else by cut id), for the oracle student.
2. **10 ms -> 30 ms** (:mod:`asrkit.senone.convert`): phones by the frame rule, phone instances recomputed
   (a 30 ms frame belongs to the instance of the 10 ms frame whose label it takes); lost phones counted.
3. **Tree statistics** at 30 ms (N=3, P=1, pdf-class 0: the one-state topology; silence context-
   independent, like ``acc-tree-stats --ci-phones``) over the training set. Features (``tree_feats``):
   ``mfcc`` (default) is what Kaldi's chain recipes do (the tree is built on the features of the GMM
   alignments, subsampled): 13 MFCC + deltas + delta-deltas with the GMM's CMN, taken at each 30 ms
   frame's label frame (deltas see the full 10 ms context); ``fbank`` is the network input (64 log-mel,
   global CMVN, three frames stacked, 192 dims). The default is MFCC because the diagonal-Gaussian
   likelihood behind the splits assumes uncorrelated dimensions: the three stacked fbank frames are
   strongly correlated, which inflates the gains (about threefold) and makes ``thresh`` mean something
   else than in Kaldi; 39-dim MFCC keeps Kaldi's scale.
4. **Tree**: questions from clustering the non-silence phones on their statistics plus the silence /
   non-silence question (:func:`asrkit.tree.make_questions`), one shared, split root per non-silence
   phone and one unsplit root per silence phone (:func:`asrkit.tree.default_roots`), at most
   ``num_leaves`` leaves (logged when the data support fewer). Written as ``<out>/tree`` (Kaldi binary)
   and ``<out>/final.mdl`` (``asrkit-hmm-v1``: ``TransitionModel(tree, lang_senone/topo)`` + tree + topo
   text); kaldi_hmm_gmm's TransitionModel must see ``num_pdfs`` equal to the number of leaves.
5. **Targets**: every 30 ms frame of every kept cut mapped to its senone through the tree (the frame's
   true triphone context), an int16 array of exactly ``T = ceil(n / 3)`` ids (``n`` the fbank cut's
   frames) stored with ``NumpyFilesWriter`` under ``<out>/targets/<set>/`` and attached to the fbank cut
   as the custom field ``senones`` (``TemporalArray``, ``frame_shift=0.03``, ``temporal_dim=0``):
   ``<out>/cuts_<set>.jsonl.gz``.
6. **Priors**: ``<out>/senone_counts.npy``, float64 frame counts per senone over the training set's
   targets, **raw** (they sum to the number of 30 ms training frames; senones without frames have 0).
   No smoothing is stored; the consumer floors: ``asrkit.nnet.infer.log_priors_from_counts`` takes
   ``log(max(count / total, 1e-8))``. ``<out>/occupancy.txt`` summarises them.
7. **Graph**: ``<out>/graph/`` (HCLG over ``lang_senone`` and ``G.fst``, :func:`asrkit.graph.make_graph_dir`).

Every output is written atomically with a done marker; a re-run skips what is done. Rebuilding the tree
(no done marker on ``final.mdl``, or ``force``) invalidates every later output.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from lhotse import CutSet
from lhotse.features.io import NumpyFilesWriter
from lhotse.utils import fastcopy

from asrkit.data.lazy import open_cuts
from asrkit.features.deltas import add_deltas
from asrkit.features.reader import FeatureReader
from asrkit.features.stack import STACKED_FRAME_SHIFT, label_frame_indices, num_frames, num_stacked_frames
from asrkit.fst import kaldi_hmm_gmm
from asrkit.gmm import AlignOptions, FeatConfig, GmmModel, LangInfo, align_corpus, load_alignments, load_corpus
from asrkit.gmm.trainer import save_alignments
from asrkit.graph.hclg import make_graph_dir, read_int_list, read_symbol_table
from asrkit.hmm import load_model, read_topo, read_tree, save_model, write_tree
from asrkit.senone.convert import ConvertCounts, convert_to_30ms
from asrkit.tree.build import build_tree, default_roots
from asrkit.tree.kaldi_format import kaldi_to_tree, to_kaldi
from asrkit.tree.questions import make_questions, write_sets
from asrkit.tree.stats import accumulate_tree_stats
from asrkit.utils.atomic import atomic_path, atomic_write_text, done_marker, is_done, mark_done

log = logging.getLogger(__name__)
PathLike = Union[str, Path]

TARGETS_FIELD = "senones"
TREE_FEATS = ("mfcc", "fbank")


@dataclass
class SenoneConfig:
    num_leaves: int = 3000
    thresh: float = 300.0  # build-tree --thresh
    min_count: float = 100.0  # frames on each side of a split
    cluster_thresh: float = -1.0  # -1: the smallest split gain (build-tree's default)
    tree_feats: str = "mfcc"  # mfcc | fbank
    cmn: str = "speaker"  # MFCC normalisation of the GMM system (speaker | utt | none)
    train_set: str = "train_sup"
    keep_oov: bool = False  # keep cuts with out-of-lexicon words (aligned to the OOV word)
    beam: float = 10.0
    # sets aligned here (dev, test) are of speakers the GMM never saw: Kaldi's retry beam 40 fails
    # on some of them with a small GMM (tiny corpora), and each failure costs a dev utterance
    retry_beam: float = 160.0
    boost_silence: float = 1.0
    nj: int = 1
    seed: int = 0
    force: bool = False
    # set -> (set whose fbank/MFCC cuts it uses, manifest whose supervisions give the text)
    text_from: Dict[str, Tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tree_feats not in TREE_FEATS:
            raise ValueError(f"tree_feats must be one of {TREE_FEATS}, not {self.tree_feats!r}")


@dataclass
class SetData:
    """One labelled set after alignment and conversion (kept cuts only, in manifest order)."""

    name: str
    cuts: list  # fbank cuts that get targets
    n: Dict[str, int]  # 10 ms frames per cut
    phones30: Dict[str, np.ndarray]
    starts30: Dict[str, np.ndarray]
    left_out: Dict[str, str] = field(default_factory=dict)
    counts: ConvertCounts = field(default_factory=ConvertCounts)
    mfcc_cuts: Dict[str, object] = field(default_factory=dict)


@dataclass
class SenoneSummary:
    num_senones: int = 0
    num_leaves_asked: int = 0
    data_limited: bool = False
    sets: Dict[str, Dict[str, int]] = field(default_factory=dict)  # set -> {cuts, frames, left_out}
    convert: Dict[str, Dict[str, int]] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)
    graph_states: int = 0
    graph_arcs: int = 0


# ----------------------------------------------------------------------------- inputs


def check_frame_counts(fbank_cut, mfcc_cut) -> int:
    """n, the 10 ms frames of a cut; raises ``ValueError`` naming the cut where the fbank and MFCC
    frame counts (or the fbank count and the frame rule for its duration) differ."""
    if not fbank_cut.has_features:
        raise ValueError(f"cut {fbank_cut.id}: the fbank cut has no features")
    n = int(fbank_cut.features.num_frames)
    rule = num_frames(fbank_cut.duration, fbank_cut.features.sampling_rate)
    if n != rule:
        raise ValueError(f"cut {fbank_cut.id}: fbank has {n} frames but the frame rule gives {rule} for "
                         f"{fbank_cut.duration} s")
    if mfcc_cut is not None:
        m = int(mfcc_cut.features.num_frames) if mfcc_cut.has_features else -1
        if m != n:
            raise ValueError(f"cut {fbank_cut.id}: MFCC has {m} frames and fbank {n}: the two feature sets "
                             f"must share the 10 ms framing (rerun stage 2)")
    return n


def _words(cut) -> List[str]:
    return " ".join(s.text for s in cut.supervisions if s.text).split()


def _load_cuts(path: Path, what: str):
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return CutSet.from_file(path).to_eager()


def _with_text(fb: list, mf: Dict[str, object], manifest: PathLike, set_name: str):
    """The fbank cuts and MFCC cuts with their supervisions' text taken from ``manifest``."""
    by_sup: Dict[str, str] = {}
    by_cut: Dict[str, str] = {}
    for c in _load_cuts(Path(manifest), "transcript manifest"):
        texts = [s.text for s in c.supervisions if s.text]
        for s in c.supervisions:
            if s.text:
                by_sup[s.id] = s.text
        if texts:
            by_cut[c.id] = " ".join(texts)

    def retext(cut):
        if not cut.supervisions:
            return cut
        if all(s.id in by_sup for s in cut.supervisions):
            sups = [fastcopy(s, text=by_sup[s.id]) for s in cut.supervisions]
        elif len(cut.supervisions) == 1 and cut.id in by_cut:
            sups = [fastcopy(cut.supervisions[0], text=by_cut[cut.id])]
        else:
            sups = [fastcopy(s, text=None) for s in cut.supervisions]
        return fastcopy(cut, supervisions=sups)

    fb = [retext(c) for c in fb]
    mf = {k: retext(c) for k, c in mf.items()}
    found = sum(1 for c in fb if _words(c))
    log.info("%s: transcripts from %s for %d of %d cuts", set_name, manifest, found, len(fb))
    return fb, mf


def _leave_out(left: Dict[str, str], cut_id: str, reason: str, set_name: str) -> None:
    left[cut_id] = reason
    log.warning("%s: cut %s left out of the targets: %s", set_name, cut_id, reason)


def _alignments_for_set(set_name: str, ali_dir: Path, out_dir: Path, model, lang_gmm: Path, mfcc_cuts: list,
                        config: SenoneConfig) -> dict:
    """{"alis": {utt: tids}, "failed": {utt: reason}} for ``set_name`` (see the module doc)."""
    if set_name == config.train_set:
        return load_alignments(ali_dir / "ali.pt")
    for p in (ali_dir / f"ali_{set_name}.pt",):
        if p.exists():
            log.info("%s: alignments from %s", set_name, p)
            return load_alignments(p)
    own = out_dir / f"ali_{set_name}.pt"
    if is_done(own):
        log.info("%s: alignments from %s (done)", set_name, own)
        return load_alignments(own)
    if not mfcc_cuts:
        return {"alis": {}, "failed": {}}
    t0 = time.perf_counter()
    corpus = load_corpus(mfcc_cuts, FeatConfig(cmn=config.cmn))
    res = align_corpus(model, corpus, LangInfo.read(lang_gmm),
                       AlignOptions(beam=config.beam, retry_beam=config.retry_beam,
                                    boost_silence=config.boost_silence), nj=config.nj)
    save_alignments(own, model, res.alis, res.failed, str(ali_dir / "final.mdl"))
    mark_done(own)
    secs = time.perf_counter() - t0
    log.info("%s: aligned %d utterances (%d frames) with %s in %.2f s (%.0f frames/s), %d failed, %d retried",
             set_name, len(res.alis), res.frames, ali_dir / "final.mdl", secs, res.frames / max(secs, 1e-9),
             len(res.failed), len(res.retried))
    return {"alis": res.alis, "failed": res.failed}


def prepare_set(set_name: str, *, ali_dir: PathLike, out_dir: PathLike, lang_gmm: PathLike, mfcc_dir: PathLike,
                fbank_dir: PathLike, model, config: SenoneConfig) -> SetData:
    """Cuts, checks, alignments and the 10 -> 30 ms conversion of one labelled set."""
    ali_dir, out_dir, mfcc_dir, fbank_dir = Path(ali_dir), Path(out_dir), Path(mfcc_dir), Path(fbank_dir)
    t0 = time.perf_counter()
    feat_set, text_manifest = config.text_from.get(set_name, (set_name, None))
    fb = _load_cuts(fbank_dir / f"cuts_{feat_set}.jsonl.gz", "fbank cuts")
    mf = {c.id: c for c in _load_cuts(mfcc_dir / f"cuts_{feat_set}.jsonl.gz", "MFCC cuts")}
    if text_manifest is not None:
        fb, mf = _with_text(fb, mf, text_manifest, set_name)
    words = read_symbol_table(Path(lang_gmm) / "words.txt")
    left: Dict[str, str] = {}
    n: Dict[str, int] = {}
    eligible = []
    for cut in fb:
        m = mf.get(cut.id)
        n[cut.id] = check_frame_counts(cut, m)
        if m is None:
            _leave_out(left, cut.id, f"no MFCC features in {mfcc_dir}/cuts_{feat_set}.jsonl.gz", set_name)
            continue
        w = _words(cut)
        if not w:
            _leave_out(left, cut.id, "no transcript", set_name)
            continue
        oov = sorted({x for x in w if x not in words})
        if oov and not config.keep_oov:
            _leave_out(left, cut.id, f"words missing from the lexicon: {' '.join(oov[:10])}", set_name)
            continue
        eligible.append(cut)
    ali = _alignments_for_set(set_name, ali_dir, out_dir, model, Path(lang_gmm),
                              [mf[c.id] for c in eligible], config)
    alis, failed = ali.get("alis", {}), ali.get("failed", {})
    info = model.info
    max_tid = len(info.phone) - 1
    data = SetData(set_name, [], n, {}, {}, left, ConvertCounts(), mf)
    for cut in eligible:
        a = alis.get(cut.id)
        if a is None:
            reason = failed.get(cut.id)
            _leave_out(left, cut.id, f"alignment failed: {reason}" if reason else
                       "no alignment (not in the GMM system's alignments)", set_name)
            continue
        a = np.asarray(a, dtype=np.int64)
        if len(a) != n[cut.id]:
            raise ValueError(f"cut {cut.id}: alignment of {len(a)} frames for {n[cut.id]} feature frames "
                             f"(alignments of another feature extraction?)")
        if len(a) and (a.min() < 1 or a.max() > max_tid):
            raise ValueError(f"cut {cut.id}: transition ids outside 1..{max_tid}: alignments of another model?")
        p30, s30, cc = convert_to_30ms(info.phone[a], info.phone_starts(a))
        if cc.lost:
            log.warning("%s: cut %s lost %d phone(s) in the 10 -> 30 ms conversion", set_name, cut.id, cc.lost)
        data.counts += cc
        data.phones30[cut.id], data.starts30[cut.id] = p30, s30
        data.cuts.append(cut)
    log.info("%s: %d cuts, %d kept, %d left out; %s; %.2f s", set_name, len(fb), len(data.cuts), len(left),
             data.counts.line(), time.perf_counter() - t0)
    return data


# ----------------------------------------------------------------------------- tree features

_CTX: dict = {}


def _mfcc_job(ids: Sequence[str]):
    out = []
    for u in ids:
        cut, n = _CTX["cuts"][u], _CTX["n"][u]
        raw = np.asarray(cut.load_features(), dtype=np.float64)
        if raw.shape[0] != n:
            raise ValueError(f"cut {u}: {raw.shape[0]} stored MFCC frames, expected {n}")
        # CMN is a shift of the static part; deltas of (x - m) equal deltas of x (edge-replicated
        # regression windows sum to zero), so the mean can be subtracted after subsampling.
        d = add_deltas(raw, order=2, window=2)[label_frame_indices(n)]
        out.append((u, np.asarray(d, dtype=np.float32), raw.sum(0), raw.shape[0]))
    return out


def _fbank_job(ids: Sequence[str]):
    reader = _CTX["reader"]
    out = []
    for u in ids:
        x = reader(_CTX["cuts"][u])
        if len(x) != num_stacked_frames(_CTX["n"][u]):
            raise ValueError(f"cut {u}: {len(x)} stacked fbank frames, expected {num_stacked_frames(_CTX['n'][u])}")
        out.append((u, x, None, 0))
    return out


def _parallel(job, ids: List[str], nj: int) -> list:
    nj = max(1, min(nj, len(ids)))
    parts = [ids[i::nj] for i in range(nj)]
    if nj == 1:
        return job(ids)
    with mp.get_context("fork").Pool(nj) as pool:
        return [r for part in pool.map(job, parts) for r in part]


def tree_features(data: SetData, config: SenoneConfig, cmvn: Optional[PathLike] = None) -> Dict[str, np.ndarray]:
    """Per kept cut, [T, D] float32 features of its 30 ms frames for the tree statistics (module doc)."""
    ids = [c.id for c in data.cuts]
    _CTX.clear()
    _CTX["n"] = data.n
    try:
        if config.tree_feats == "fbank":
            if cmvn is None:
                raise ValueError("tree_feats=fbank needs the CMVN statistics (--cmvn)")
            _CTX["cuts"] = {c.id: c for c in data.cuts}
            _CTX["reader"] = FeatureReader(cmvn)
            return {u: x for u, x, _, _ in _parallel(_fbank_job, ids, config.nj)}
        _CTX["cuts"] = {u: data.mfcc_cuts[u] for u in ids}
        res = _parallel(_mfcc_job, ids, config.nj)
    finally:
        _CTX.clear()
    feats = {u: x for u, x, _, _ in res}
    if config.cmn == "none":
        return feats
    spk_of = {}
    for c in data.cuts:
        sp = c.supervisions[0].speaker if c.supervisions and c.supervisions[0].speaker else None
        spk_of[c.id] = sp if (sp and config.cmn == "speaker") else c.id
    acc: Dict[str, list] = {}
    for u, _, s, k in res:
        a = acc.setdefault(spk_of[u], [0.0, 0])
        a[0] = a[0] + s
        a[1] += k
    for u, x in feats.items():
        s, k = acc[spk_of[u]]
        x[:, :len(s)] -= (s / max(k, 1)).astype(np.float32)
    return feats


# ----------------------------------------------------------------------------- tree


def _silence_and_topo(lang: Path) -> Tuple[List[int], str, List[int]]:
    topo_text = (lang / "topo").read_text()
    topo = read_topo(topo_text)
    p2n = topo.get_phone_to_num_pdf_classes()
    phones = [int(p) for p in topo.phones]
    multi = [p for p in phones if int(p2n[p]) != 1]
    if multi:
        raise ValueError(f"{lang}/topo is not a one-state topology: phones {multi[:10]} have "
                         f"{int(p2n[multi[0]])} pdf-classes (give data/lang_senone as --lang)")
    sil_file = lang / "phones" / "silence.int"
    sil = read_int_list(sil_file) if sil_file.exists() else []
    if not sil:
        log.warning("%s lists no silence phones: every phone gets a split root", lang)
    return [p for p in sil if p in phones], topo_text, phones


def build_senone_tree(stats, lang: PathLike, config: SenoneConfig):
    """(ContextTree, BuildResult) for the one-state topology of ``lang`` (silence unsplit)."""
    sil, _, phones = _silence_and_topo(Path(lang))
    nonsil = [p for p in phones if p not in sil]
    questions = make_questions(stats, phone_sets=[(p,) for p in stats.phones().tolist() if p in nonsil],
                               extra_questions=[tuple(sil), tuple(nonsil)] if sil else None,
                               cluster_pdf_classes=None, max_num_pdf_classes=1, seed=config.seed)
    res = build_tree(stats, questions, default_roots(phones, sil), num_pdf_classes={p: 1 for p in phones},
                     silence_phones=sil, max_leaves=config.num_leaves, thresh=config.thresh,
                     min_count=config.min_count, cluster_thresh=config.cluster_thresh)
    return res.tree, res, questions


def senone_targets(tree, phones30: np.ndarray, starts30: np.ndarray,
                   utt_lengths: Optional[Sequence[int]] = None) -> np.ndarray:
    """int16 senone id per 30 ms frame (the tree applied to each frame's triphone context)."""
    pdfs = tree.frame_pdfs(phones30, np.zeros(len(phones30), dtype=np.int32), phone_starts=starts30,
                           utt_lengths=utt_lengths)
    if len(pdfs) and pdfs.min() < 0:
        bad = int(np.flatnonzero(pdfs < 0)[0])
        raise ValueError(f"frame {bad}: the tree has no senone for phone {int(phones30[bad])}")
    if tree.num_pdfs > np.iinfo(np.int16).max + 1:
        raise ValueError(f"{tree.num_pdfs} senones do not fit int16 targets")
    return pdfs.astype(np.int16)


# ----------------------------------------------------------------------------- outputs


def write_targets(data: SetData, targets: Dict[str, np.ndarray], out_dir: Path) -> Path:
    """``<out>/targets/<set>/`` (NumpyFilesWriter) and ``<out>/cuts_<set>.jsonl.gz``, atomic, done marker."""
    manifest = out_dir / f"cuts_{data.name}.jsonl.gz"
    store = out_dir / "targets" / data.name
    for p in (manifest, store):
        done_marker(p).unlink(missing_ok=True)
    new_cuts = []
    with atomic_path(store) as tmp:
        tmp.mkdir(parents=True)
        writer = NumpyFilesWriter(tmp)
        for cut in data.cuts:
            arr = targets[cut.id]
            T = num_stacked_frames(data.n[cut.id])
            if arr.dtype != np.int16 or arr.shape != (T,):
                raise RuntimeError(f"cut {cut.id}: targets {arr.dtype} {arr.shape}, expected int16 ({T},)")
            ta = writer.store_array(cut.id, arr, frame_shift=STACKED_FRAME_SHIFT, temporal_dim=0, start=cut.start)
            ta = fastcopy(ta, array=fastcopy(ta.array, storage_path=str(store)))
            new_cuts.append(cut.with_custom(TARGETS_FIELD, ta))
    mark_done(store)
    with atomic_path(manifest) as tmp:
        CutSet.from_cuts(new_cuts).to_file(tmp)
    atomic_write_text(out_dir / f"left_out_{data.name}.txt",
                      "".join(f"{u} {r}\n" for u, r in sorted(data.left_out.items())))
    mark_done(manifest)
    return manifest


def occupancy_text(counts: np.ndarray, silence_senones: Sequence[int], extra: Dict[str, object]) -> str:
    c = np.asarray(counts, dtype=np.float64)
    total = float(c.sum())
    sil = float(c[list(silence_senones)].sum()) if len(silence_senones) else 0.0
    lines = [f"senones {len(c)}",
             f"frames {int(total)}",
             f"min_frames {int(c.min()) if len(c) else 0}",
             f"median_frames {float(np.median(c)) if len(c) else 0:g}",
             f"max_frames {int(c.max()) if len(c) else 0}",
             f"senones_under_10_frames {int((c < 10).sum())}",
             f"senones_without_frames {int((c == 0).sum())}",
             f"silence_senones {len(silence_senones)}",
             f"silence_frame_share {sil / max(total, 1e-12):.4f}"]
    lines += [f"{k} {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def _counts_from_manifest(manifest: Path, num_pdfs: int) -> np.ndarray:
    counts = np.zeros(num_pdfs, dtype=np.float64)
    for cut in open_cuts(manifest):  # one streaming pass
        counts += np.bincount(np.asarray(cut.custom[TARGETS_FIELD].load(), dtype=np.int64), minlength=num_pdfs)
    return counts


# ----------------------------------------------------------------------------- the stage


def make_senones(*, ali_dir: PathLike, lang: PathLike, lang_gmm: PathLike, mfcc_dir: PathLike,
                 fbank_dir: PathLike, sets: Sequence[str], G: Optional[PathLike], out_dir: PathLike,
                 cmvn: Optional[PathLike] = None, config: SenoneConfig = SenoneConfig()) -> SenoneSummary:
    """Run stage 6 (module doc). ``sets``: labelled sets to write targets for (the training set is added
    if missing). ``G``: None skips the graph. Returns a :class:`SenoneSummary`."""
    t_all = time.perf_counter()
    ali_dir, lang, lang_gmm, out = Path(ali_dir), Path(lang), Path(lang_gmm), Path(out_dir)
    for p, what in ((ali_dir / "final.mdl", "GMM model"), (ali_dir / "ali.pt", "GMM alignments"),
                    (lang / "topo", "lang topo"), (lang_gmm / "words.txt", "GMM lang words.txt"),
                    (Path(mfcc_dir), "MFCC dir"), (Path(fbank_dir), "fbank dir")):
        if not p.exists():
            raise FileNotFoundError(f"{what} not found: {p}")
    if G is not None and not Path(G).exists():
        raise FileNotFoundError(f"G.fst not found: {G}")
    if read_symbol_table(lang / "phones.txt") != read_symbol_table(lang_gmm / "phones.txt"):
        raise ValueError(f"{lang}/phones.txt and {lang_gmm}/phones.txt differ: the senone lang must share the "
                         f"GMM lang's phones")
    sets = list(dict.fromkeys([config.train_set] + [s for s in sets if s]))
    out.mkdir(parents=True, exist_ok=True)
    summary = SenoneSummary(num_leaves_asked=config.num_leaves)
    sil, topo_text, _ = _silence_and_topo(lang)
    model = GmmModel.load(ali_dir / "final.mdl")
    mdl_path = out / "final.mdl"
    downstream = [out / f"cuts_{s}.jsonl.gz" for s in sets] + [out / "senone_counts.npy", out / "graph"]
    if config.force or not is_done(mdl_path):
        stale = downstream + [mdl_path] + list(out.glob("cuts_*.jsonl.gz"))
        if config.force:  # also realign the sets aligned here (the GMM system may have changed)
            stale += list(out.glob("ali_*.pt"))
        for p in stale:
            done_marker(p).unlink(missing_ok=True)

    set_data: Dict[str, SetData] = {}

    def get_set(s: str) -> SetData:
        if s not in set_data:
            set_data[s] = prepare_set(s, ali_dir=ali_dir, out_dir=out, lang_gmm=lang_gmm, mfcc_dir=mfcc_dir,
                                      fbank_dir=fbank_dir, model=model, config=config)
            summary.convert[s] = asdict(set_data[s].counts)
        return set_data[s]

    # ---- tree and model
    if is_done(mdl_path):
        log.info("%s is done: tree not rebuilt (force to redo)", mdl_path)
        tree = kaldi_to_tree(read_tree(out / "tree"))
        build = json.loads((out / "build.json").read_text()) if (out / "build.json").exists() else {}
        summary.data_limited = bool(build.get("data_limited", False))
    else:
        train = get_set(config.train_set)
        if not train.cuts:
            raise ValueError(f"{config.train_set}: no cut left to build the tree from (see the log)")
        t0 = time.perf_counter()
        feats = tree_features(train, config, cmvn)
        ids = [c.id for c in train.cuts]
        stats = accumulate_tree_stats(
            np.concatenate([train.phones30[u] for u in ids]), np.zeros(sum(len(feats[u]) for u in ids), np.int32),
            np.concatenate([feats[u] for u in ids]), context_width=3, central_position=1,
            phone_starts=np.concatenate([train.starts30[u] for u in ids]),
            utt_lengths=[len(train.phones30[u]) for u in ids], ci_phones=sil)
        del feats
        stats.save(out / "tree_stats.npz")
        summary.seconds["tree_stats"] = round(time.perf_counter() - t0, 3)
        log.info("tree statistics (%s, %d dims): %d contexts from %d frames of 30 ms in %.2f s", config.tree_feats,
                 stats.dim, stats.num_contexts, int(stats.total_count), summary.seconds["tree_stats"])
        t0 = time.perf_counter()
        tree, res, questions = build_senone_tree(stats, lang, config)
        summary.seconds["tree_build"] = round(time.perf_counter() - t0, 3)
        summary.data_limited = res.data_limited
        if res.num_leaves < config.num_leaves:
            log.warning("senone tree: %d leaves, fewer than the %d asked: the data support no more (splits need a "
                        "gain > %g and >= %g frames a side)", res.num_leaves, config.num_leaves, config.thresh,
                        config.min_count)
        cd = to_kaldi(tree)
        write_tree(cd, out / "tree")
        tm = kaldi_hmm_gmm.TransitionModel(cd, read_topo(topo_text))
        if not (int(tm.num_pdfs) == int(cd.num_pdfs) == res.num_leaves == tree.num_pdfs):
            raise RuntimeError(f"kaldi_hmm_gmm TransitionModel has {tm.num_pdfs} pdfs, the tree {cd.num_pdfs}, "
                               f"the builder {res.num_leaves} leaves: they must agree")
        write_sets(questions.phone_questions, out / "questions.int")
        build = {"num_leaves": res.num_leaves, "num_leaves_asked": config.num_leaves,
                 "num_leaves_split": res.num_leaves_split, "num_splits": res.num_splits,
                 "objf_gain_per_frame": res.objf_gain / max(res.total_count, 1e-10),
                 "cluster_thresh": res.cluster_thresh, "data_limited": res.data_limited,
                 "frames": int(res.total_count), "tree_feats": config.tree_feats, "feat_dim": stats.dim,
                 "thresh": config.thresh, "min_count": config.min_count, "seconds": res.seconds,
                 "num_transition_ids": int(tm.num_transition_ids)}
        atomic_write_text(out / "build.json", json.dumps(build, indent=1) + "\n")
        save_model(mdl_path, tm, cd, topo=topo_text,
                   meta={"type": "senone", "frame_shift": STACKED_FRAME_SHIFT, "num_leaves": res.num_leaves,
                         "tree_feats": config.tree_feats, "ali_dir": str(ali_dir)})
        mark_done(mdl_path)
        log.info("senone tree: %d senones (%d asked), %d transition ids; tree %s, model %s; %.2f s",
                 res.num_leaves, config.num_leaves, tm.num_transition_ids, out / "tree", mdl_path,
                 summary.seconds["tree_build"])
    num_pdfs = tree.num_pdfs
    summary.num_senones = num_pdfs

    # ---- targets
    t0 = time.perf_counter()
    train_counts = None
    for s in sets:
        manifest = out / f"cuts_{s}.jsonl.gz"
        if is_done(manifest):
            log.info("%s is done, skipped", manifest)
            continue
        d = get_set(s)
        ids = [c.id for c in d.cuts]
        lengths = [len(d.phones30[u]) for u in ids]
        allp = senone_targets(tree, np.concatenate([d.phones30[u] for u in ids]) if ids else np.zeros(0, np.int32),
                              np.concatenate([d.starts30[u] for u in ids]) if ids else np.zeros(0, bool),
                              lengths if ids else None)
        targets = dict(zip(ids, np.split(allp, np.cumsum(lengths)[:-1]) if ids else []))
        write_targets(d, targets, out)
        summary.sets[s] = {"cuts": len(ids), "frames": int(sum(lengths)), "left_out": len(d.left_out)}
        log.info("%s: targets for %d cuts (%d frames of 30 ms), %d left out -> %s", s, len(ids), sum(lengths),
                 len(d.left_out), manifest)
        if s == config.train_set:
            train_counts = np.bincount(allp.astype(np.int64), minlength=num_pdfs).astype(np.float64)
    summary.seconds["targets"] = round(time.perf_counter() - t0, 3)

    # ---- priors and occupancy
    counts_path = out / "senone_counts.npy"
    if not is_done(counts_path) or train_counts is not None:
        if train_counts is None:
            train_counts = _counts_from_manifest(out / f"cuts_{config.train_set}.jsonl.gz", num_pdfs)
        with atomic_path(counts_path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, train_counts)
        sil_pdfs = sorted({int(tree.map([0, p, 0], 0)) for p in sil})
        conv = summary.convert.get(config.train_set, {})
        extra = {"senones_asked": config.num_leaves, "data_limited": summary.data_limited,
                 "phones_lost_10ms_to_30ms": conv.get("lost", "n/a"),
                 "phone_instances_30ms": conv.get("phones30", "n/a"),
                 "phones_with_one_30ms_frame": conv.get("single_frame", "n/a")}
        atomic_write_text(out / "occupancy.txt", occupancy_text(train_counts, sil_pdfs, extra))
        mark_done(counts_path)
        c = train_counts
        log.info("priors: %d senones over %d frames; frames per senone min %d / median %g / max %d; %d under 10 "
                 "frames; silence share %.3f", len(c), int(c.sum()), int(c.min()), float(np.median(c)), int(c.max()),
                 int((c < 10).sum()), float(c[sil_pdfs].sum() / max(c.sum(), 1)))

    # ---- graph
    if G is not None:
        gdir = out / "graph"
        if is_done(gdir):
            log.info("%s is done, skipped", gdir)
        else:
            t0 = time.perf_counter()
            info = make_graph_dir(lang, G, load_model(mdl_path), gdir, model_desc=f"model {mdl_path}")
            summary.graph_states, summary.graph_arcs = info.states, info.arcs
            summary.seconds["graph"] = round(time.perf_counter() - t0, 3)
    summary.seconds["total"] = round(time.perf_counter() - t_all, 3)
    if summary.sets or "tree_build" in summary.seconds or "graph" in summary.seconds:  # keep the last real run's
        atomic_write_text(out / "summary.json", json.dumps(asdict(summary), indent=1) + "\n")
    log.info("make_senones: %d senones, sets %s, %.2f s", summary.num_senones,
             ", ".join(f"{k} {v['cuts']} cuts/{v['frames']} frames/{v['left_out']} left out"
                       for k, v in summary.sets.items()) or "(all done)", summary.seconds["total"])
    return summary
