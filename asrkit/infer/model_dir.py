"""A portable model: one self-contained directory holding everything a trained hybrid system decodes with.

Written by :func:`export_model` from a recipe's ``exp/`` and ``data/`` (``python -m asrkit.bin.export_model``)::

    model.json            manifest: format, asrkit version, system, network config, frontend (frame rule),
                          decoding (the LM weight chosen on dev, beam, ...), sha256 and size of every piece
    nnet.pt               network weights + config (asrkit-nnet-v1 checkpoint, no optimiser state)
    cmvn.npz              global CMVN of the 64-bin fbank (training data's statistics)
    senone_counts.npy     senone frame counts: the priors subtracted from the log-posteriors
    tree                  the senone tree (Kaldi binary ContextDependency)
    final.mdl             the senone transition model + tree (asrkit-hmm-v1)
    graph/HCLG.fst        the senone decoding graph, with graph/words.txt, phones.txt, transitions.npz
    lexicon.txt           the pronunciations (word timings of the CTM output)

A GMM system (``kind: gmm``: mono, tri) holds ``final.mdl`` (GMMs, transition model, tree), its own
``graph/`` and ``lexicon.txt``; its frontend is the GMMs' MFCC with deltas, mean-normalised per file.

:func:`load_model_dir` refuses a directory with a missing piece, a checksum mismatch or pieces that do not
fit together (network outputs, priors, tree, transition model and graph disagreeing on the number of
senones; CMVN and network input dims; a tree that is not the transition model's; a graph built for another
transition model; a frontend this code does not compute), naming the piece (:class:`ModelDirError`).
``final.mdl`` and ``nnet.pt`` are pickles: load model directories from sources you trust.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

import asrkit
from asrkit.features.extract import FRAME_LENGTH, NUM_MEL_BINS
from asrkit.features.stack import FRAME_SHIFT, SAMPLING_RATE, STACK, STACKED_FRAME_SHIFT
from asrkit.utils.atomic import atomic_path

log = logging.getLogger(__name__)
PathLike = Union[str, Path]

FORMAT = "asrkit-model-v1"
MANIFEST = "model.json"

# every piece of a network model directory and what it is (the name used in error messages)
NNET_PIECES: Dict[str, str] = {
    "nnet.pt": "network weights and config",
    "cmvn.npz": "CMVN statistics",
    "senone_counts.npy": "senone priors",
    "tree": "senone tree",
    "final.mdl": "transition model",
    "graph/HCLG.fst": "decoding graph",
    "graph/words.txt": "word table",
    "graph/phones.txt": "phone table",
    "graph/transitions.npz": "graph's transition table",
    "lexicon.txt": "lexicon",
}
# a GMM system's (mono, tri): final.mdl holds the GMMs, the transition model and the tree
GMM_PIECES: Dict[str, str] = {
    "final.mdl": "GMM acoustic model, transition model and tree",
    **{k: v for k, v in NNET_PIECES.items() if k.startswith("graph/") or k == "lexicon.txt"},
}
TORCHSCRIPT = "student.ts"  # optional: export_model(..., torchscript=True)
PIECES: Dict[str, str] = {**NNET_PIECES, **GMM_PIECES, TORCHSCRIPT: "TorchScript student"}
KIND_PIECES = {"nnet": NNET_PIECES, "gmm": GMM_PIECES}
GRAPH_FILES = tuple(k[len("graph/"):] for k in NNET_PIECES if k.startswith("graph/"))  # HCLG.fst, words.txt, ...

# The frontend the code computes (docs/design.md's frame rule); a model asking for another is refused.
FRONTEND = {
    "kind": "fbank", "num_mel_bins": NUM_MEL_BINS, "sampling_rate": SAMPLING_RATE, "frame_length": FRAME_LENGTH,
    "frame_shift": FRAME_SHIFT, "snip_edges": False, "dither": 0.0, "stack": STACK,
    "stacked_frame_shift": STACKED_FRAME_SHIFT, "cmvn": "global, training statistics, before stacking",
}
# frontend.cmvn of a network normalised otherwise (its train_config.cmvn_mode, asrkit.features.reader)
CMVN_FRONTEND = {"global": FRONTEND["cmvn"], "speaker": "per speaker (a transcribed file: its own), before stacking",
                 "utterance": "per utterance, before stacking"}
# The GMM systems' (asrkit.gmm.data): 13 MFCC at 10 ms, mean normalisation, deltas and delta-deltas. The
# recipe normalises per speaker; a transcribed file is its own speaker.
GMM_FRONTEND = {
    "kind": "mfcc", "num_ceps": 13, "mfcc_mel_bins": 23, "sampling_rate": SAMPLING_RATE,
    "frame_length": FRAME_LENGTH, "frame_shift": FRAME_SHIFT, "snip_edges": False, "dither": 0.0,
    "cmn": "mean per utterance", "delta_order": 2, "delta_window": 2,
}


class ModelDirError(ValueError):
    """A model directory that cannot be used; ``piece`` names the file (or manifest field) at fault."""

    def __init__(self, model_dir: PathLike, piece: str, problem: str):
        self.piece = piece
        what = PIECES.get(piece, "")
        super().__init__(f"model {model_dir}: {piece}{f' ({what})' if what else ''}: {problem}")


def sha256(path: PathLike, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ export

@dataclass
class ExportSources:
    """Where a recipe keeps the pieces of ``system`` (the recipe's layout, docs/design.md)."""

    exp_dir: Path
    system: str
    data_dir: Path
    dev_set: str = "dev"

    @property
    def system_dir(self) -> Path:
        return self.exp_dir / self.system

    @property
    def kind(self) -> str:
        """nnet (best.pt) or gmm (final.mdl without best.pt: mono, tri)."""
        d = self.system_dir
        return "gmm" if (d / "final.mdl").exists() and not (d / "best.pt").exists() else "nnet"

    def files(self) -> Dict[str, Path]:
        if self.kind == "gmm":
            out = {"final.mdl": self.system_dir / "final.mdl",
                   "lexicon.txt": self.data_dir / "local" / "dict" / "lexicon.txt"}
            return {**out, **_graph_files(self.system_dir / "graph")}
        senone = self.exp_dir / "senone"
        out = {
            "nnet.pt": self.system_dir / "best.pt",
            "cmvn.npz": self.data_dir / "cmvn.npz",
            "senone_counts.npy": senone / "senone_counts.npy",
            "tree": senone / "tree",
            "final.mdl": senone / "final.mdl",
            "lexicon.txt": self.data_dir / "local" / "dict" / "lexicon.txt",
        }
        return {**out, **_graph_files(senone / "graph")}

    @property
    def dev_decode(self) -> Path:
        return self.system_dir / f"decode_{self.dev_set}"


def _graph_files(graph_dir: Path) -> Dict[str, Path]:
    """The graph pieces of a model directory (``graph/<name>``) and where a recipe keeps them."""
    return {f"graph/{name}": graph_dir / name for name in GRAPH_FILES}


def dev_choice(decode_dir: Path) -> Dict:
    """The LM weight and decoder options of the recipe's dev decoding (best_wer, summary.json)."""
    from asrkit.decode.score import read_best_weight

    best = decode_dir / "best_wer"
    if not best.exists():
        raise FileNotFoundError(f"{best} not found: decode the dev set first (the LM weight is chosen there), "
                                "or give --lm-weight")
    out = {"lm_weight": read_best_weight(best), "lm_weight_from": str(best),
           "dev_wer": best.read_text().splitlines()[0].strip()}
    summary = decode_dir / "summary.json"
    if summary.exists():
        cfg = json.loads(summary.read_text()).get("config", {})
        out.update({k: cfg[k] for k in ("beam", "max_active", "min_active", "allow_partial") if k in cfg})
    return out


def _sources_and_choice(src: ExportSources, lm_weight: Optional[float], chunk: int):
    if not src.system_dir.is_dir():
        raise FileNotFoundError(f"system {src.system!r} not found: no {src.system_dir}")
    files = src.files()
    for name, path in files.items():
        if not path.exists():
            raise FileNotFoundError(f"{path} ({PIECES[name]}) not found: is {src.system} a trained system of "
                                    f"this recipe (a network: stages 2, 3, 6 and its training; a GMM: its graph)?")
    decode = {"lm_weight": float(lm_weight), "lm_weight_from": "given"} if lm_weight is not None \
        else dev_choice(src.dev_decode)
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, got {chunk}")
    return files, decode


def _manifest(src: ExportSources, decode: Dict, chunk: int) -> Dict:
    """model.json without its checksums: what the pieces of ``src`` are and how they decode."""
    from asrkit.nnet.checkpoint import load_checkpoint

    if src.kind == "gmm":
        from asrkit.gmm import GmmModel

        return {
            "format": FORMAT, "asrkit_version": asrkit.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": {"exp_dir": str(src.exp_dir.resolve()), "system": src.system, "dev_set": src.dev_set},
            "kind": "gmm",
            "num_pdfs": int(GmmModel.load(src.files()["final.mdl"]).transition_model.num_pdfs),
            "frontend": dict(GMM_FRONTEND),
            "decode": {"beam": 13.0, "max_active": 7000, "min_active": 200, "allow_partial": True, **decode,
                       "frame_shift": FRAME_SHIFT},
        }
    ck = load_checkpoint(src.files()["nnet.pt"])
    model_config = ck["model_config"]
    streaming = not model_config.get("bidirectional", False)
    norm = (ck.get("train_config") or {}).get("cmvn_mode", "global")
    return {
        "format": FORMAT,
        "asrkit_version": asrkit.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": {"exp_dir": str(src.exp_dir.resolve()), "system": src.system, "dev_set": src.dev_set},
        "kind": "nnet",
        "network": {**model_config, "streaming": streaming},
        "num_senones": int(model_config["num_senones"]),
        "frontend": dict(FRONTEND, cmvn=CMVN_FRONTEND[norm]),
        "decode": {"beam": 13.0, "max_active": 7000, "min_active": 200, "allow_partial": True,
                   "prior_floor": _prior_floor(), **decode,
                   # the recipe decodes a unidirectional student chunk by chunk, carrying its state
                   "chunk": chunk if streaming else None},
    }


def recipe_model(exp_dir: PathLike, system: str, data_dir: Optional[PathLike] = None, dev_set: str = "dev",
                 lm_weight: Optional[float] = None, chunk: int = 32) -> "ModelDir":
    """A recipe's system used in place (nothing copied), checked as an exported one is."""
    exp_dir = Path(exp_dir)
    src = ExportSources(exp_dir, system, Path(data_dir) if data_dir else exp_dir.parent / "data", dev_set)
    files, decode = _sources_and_choice(src, lm_weight, chunk)
    md = ModelDir(src.system_dir, _manifest(src, decode, chunk), paths=files)
    if md.kind == "gmm":
        _check_gmm(md)
    else:
        _check_consistency(md)
    return md


def _slim_checkpoint(src: Path, dst: Path) -> Dict:
    """The weights and config of a training checkpoint, without optimiser or sampler state."""
    import torch

    from asrkit.nnet.checkpoint import FORMAT as NNET_FORMAT, load_checkpoint

    ck = load_checkpoint(src)
    slim = {"format": NNET_FORMAT, "model_config": ck["model_config"], "model": ck["model"]}
    slim.update({k: ck[k] for k in ("step", "epoch", "dev") if k in ck})
    torch.save(slim, dst)
    return ck["model_config"]


def export_model(exp_dir: PathLike, system: str, out_dir: PathLike, data_dir: Optional[PathLike] = None,
                 dev_set: str = "dev", lm_weight: Optional[float] = None, chunk: int = 32,
                 overwrite: bool = False, torchscript: bool = False) -> Path:
    """Write the model directory of system ``exp_dir/system`` (a network, or a GMM) to ``out_dir`` (atomically).

    ``data_dir`` defaults to the recipe's ``data/`` beside ``exp_dir``. The LM weight is the one the
    recipe chose on ``dev_set`` (``exp/<system>/decode_<dev_set>/best_wer``) unless ``lm_weight`` is given;
    ``chunk`` is the streaming chunk (30 ms frames) a unidirectional network was decoded with
    (the recipes' ``stream_chunk``, 32). ``torchscript``: also ``student.ts`` (asrkit.infer.torchscript),
    checked bit-identical to the PyTorch student.
    """
    exp_dir = Path(exp_dir)
    src = ExportSources(exp_dir, system, Path(data_dir) if data_dir else exp_dir.parent / "data", dev_set)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; remove it or pass overwrite=True (--force)")
    if not src.system_dir.is_dir():
        raise FileNotFoundError(f"system {system!r} not found: no {src.system_dir}")
    files, decode = _sources_and_choice(src, lm_weight, chunk)
    with atomic_path(out) as tmp:
        (tmp / "graph").mkdir(parents=True)
        if "nnet.pt" in files:
            _slim_checkpoint(files["nnet.pt"], tmp / "nnet.pt")
        for name, path in files.items():
            if name != "nnet.pt":
                shutil.copyfile(path, tmp / name)
        manifest = _manifest(src, decode, chunk)
        names = sorted(files)
        if torchscript:
            if manifest["kind"] != "nnet" or not manifest["network"]["streaming"]:
                raise ValueError(f"{system}: TorchScript export is for a streaming student")
            from asrkit.infer.torchscript import write_torchscript
            from asrkit.nnet.infer import load_model

            write_torchscript(load_model(tmp / "nnet.pt")[0], tmp / TORCHSCRIPT, chunk)
            manifest["torchscript"] = {"file": TORCHSCRIPT, "chunk": chunk,
                                       "call": "(x (1, T, 192), h, c) -> (log_posteriors, h, c)"}
            names.append(TORCHSCRIPT)
        manifest["files"] = {name: {"sha256": sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
                             for name in names}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        load_model_dir(tmp)  # never leave a directory that would be refused
    what = "GMM" if manifest["kind"] == "gmm" else \
        f"streaming chunk {chunk}" if manifest["network"]["streaming"] else "bidirectional"
    log.info("exported %s (LM weight %s, %s) to %s", src.system_dir, decode["lm_weight"], what, out)
    return out


def _prior_floor() -> float:
    from asrkit.nnet.infer import DEFAULT_PRIOR_FLOOR

    return DEFAULT_PRIOR_FLOOR


# ------------------------------------------------------------------------------------------ loading

@dataclass
class ModelDir:
    """A checked model directory (:func:`load_model_dir`); loads its pieces on demand."""

    path: Path
    manifest: Dict
    paths: Dict[str, Path] = field(default_factory=dict)  # pieces kept elsewhere (a recipe used in place)
    _cache: Dict = field(default_factory=dict, repr=False)

    def file(self, name: str) -> Path:
        return self.paths.get(name, self.path / name)

    @property
    def kind(self) -> str:
        return self.manifest.get("kind", "nnet")

    @property
    def decode_options(self) -> Dict:
        return self.manifest["decode"]

    @property
    def lm_weight(self) -> float:
        return float(self.manifest["decode"]["lm_weight"])

    @property
    def streaming(self) -> bool:
        return self.kind == "nnet" and bool(self.manifest["network"]["streaming"])

    @property
    def norm(self) -> str:
        """The network's feature normalisation (global | speaker | utterance) from frontend.cmvn."""
        got = self.manifest.get("frontend", {}).get("cmvn", FRONTEND["cmvn"])
        return next((k for k, v in CMVN_FRONTEND.items() if v == got), "global")

    @property
    def chunk(self) -> Optional[int]:
        return self.manifest["decode"].get("chunk")

    def network(self, device="cpu"):
        from asrkit.nnet.infer import load_model

        key = ("network", str(device))
        if key not in self._cache:
            self._cache[key] = load_model(self.file("nnet.pt"), device)[0]
        return self._cache[key]

    def gmm(self):
        from asrkit.gmm import GmmModel

        return self._cache.setdefault("gmm", GmmModel.load(self.file("final.mdl")))

    def cmvn(self):
        from asrkit.features.cmvn import CmvnStats

        return self._cache.setdefault("cmvn", CmvnStats.load(self.file("cmvn.npz")))

    def log_priors(self) -> np.ndarray:
        from asrkit.nnet.infer import log_priors_from_counts

        if "priors" not in self._cache:
            self._cache["priors"] = log_priors_from_counts(self.file("senone_counts.npy"),
                                                           float(self.decode_options["prior_floor"]))
        return self._cache["priors"]

    def graph(self):
        from asrkit.decode.decoder import Graph

        if "graph" not in self._cache:
            self._cache["graph"] = Graph.load(self.file("graph/HCLG.fst").parent)
        return self._cache["graph"]


def _read_manifest(d: Path) -> Dict:
    p = d / MANIFEST
    if not p.is_file():
        raise ModelDirError(d, MANIFEST, "missing: not an exported asrkit model (python -m asrkit.bin.export_model)")
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelDirError(d, MANIFEST, f"not valid JSON: {e}") from None
    if m.get("format") != FORMAT:
        raise ModelDirError(d, MANIFEST, f"format {m.get('format')!r}, this asrkit reads {FORMAT!r}")
    kind = m.get("kind", "nnet")
    if kind not in KIND_PIECES:
        raise ModelDirError(d, f"{MANIFEST}:kind", f"{kind!r}: expected nnet or gmm")
    needed = ("network", "frontend", "decode", "files", "num_senones") if kind == "nnet" else \
        ("frontend", "decode", "files", "num_pdfs")
    for key in needed:
        if key not in m:
            raise ModelDirError(d, MANIFEST, f"no {key!r} field")
    return m


def _check_files(d: Path, m: Dict, verify_checksums: bool) -> None:
    for name in KIND_PIECES[m.get("kind", "nnet")]:
        if name not in m["files"]:
            raise ModelDirError(d, name, f"not listed in {MANIFEST}")
    for name, meta in m["files"].items():
        p = d / name
        if not p.is_file():
            raise ModelDirError(d, name, "missing")
        if p.stat().st_size != meta["bytes"]:
            raise ModelDirError(d, name, f"size {p.stat().st_size} bytes, {MANIFEST} says {meta['bytes']}")
        if verify_checksums:
            got = sha256(p)
            if got != meta["sha256"]:
                raise ModelDirError(d, name, f"checksum mismatch: sha256 {got}, {MANIFEST} says {meta['sha256']}")


def _check_frontend(d: Path, m: Dict, expected: Dict) -> None:
    """The manifest's frontend is the one this asrkit computes (``expected``: FRONTEND or GMM_FRONTEND)."""
    for key, want in expected.items():
        got = m["frontend"].get(key)
        if got != want and not (key == "cmvn" and got in CMVN_FRONTEND.values()):
            raise ModelDirError(d, f"{MANIFEST}:frontend.{key}",
                                f"{got!r}, this asrkit computes {want!r}")


def _check_consistency(md: ModelDir) -> None:
    """Every piece agrees on the number of senones and dims; tree, transition model and graph match."""
    from asrkit.hmm import load_model as load_hmm, read_tree, tree_to_bytes

    d, m = md.path, md.manifest
    _check_frontend(d, m, FRONTEND)
    S = int(m["num_senones"])
    net = md.network()
    if net.cfg.num_senones != S:
        raise ModelDirError(d, "nnet.pt", f"{net.cfg.num_senones} network outputs, the model has {S} senones")
    if bool(net.cfg.bidirectional) == md.streaming:
        raise ModelDirError(d, f"{MANIFEST}:network.streaming",
                            f"says {md.streaming} for a {'bi' if net.cfg.bidirectional else 'uni'}directional network")
    counts = np.load(md.file("senone_counts.npy"))
    if counts.reshape(-1).shape[0] != S:
        raise ModelDirError(d, "senone_counts.npy", f"{counts.size} priors for {S} senones (network outputs)")
    cmvn = md.cmvn()
    if cmvn.dim * STACK != net.cfg.input_dim:
        raise ModelDirError(d, "cmvn.npz", f"dim {cmvn.dim} x {STACK} stacked != network input dim "
                                            f"{net.cfg.input_dim}")
    hmm = load_hmm(md.file("final.mdl"))
    if int(hmm.transition_model.num_pdfs) != S:
        raise ModelDirError(d, "final.mdl", f"{hmm.transition_model.num_pdfs} pdfs, the network has {S} outputs")
    tree = read_tree(md.file("tree"))
    if int(tree.num_pdfs) != S:
        raise ModelDirError(d, "tree", f"{tree.num_pdfs} leaves (senones), the network has {S} outputs")
    if tree_to_bytes(tree) != tree_to_bytes(hmm.tree):
        raise ModelDirError(d, "tree", "not the transition model's tree (final.mdl)")
    _check_graph(md.file("graph/HCLG.fst").parent.parent, hmm.transition_model, S)


def _check_graph(d: Path, tm, num_pdfs: int) -> None:
    from asrkit.hmm import transition_arrays

    with np.load(d / "graph" / "transitions.npz") as z:
        g_tid2pdf, g_pdfs = z["tid2pdf"], int(z["num_pdfs"])
    if g_pdfs != num_pdfs:
        raise ModelDirError(d, "graph/transitions.npz", f"graph built for {g_pdfs} pdfs, the model has {num_pdfs}")
    tid2pdf = transition_arrays(tm)["tid2pdf"]
    if len(g_tid2pdf) != len(tid2pdf) or not np.array_equal(g_tid2pdf[1:], tid2pdf[1:]):
        raise ModelDirError(d, "graph/HCLG.fst", "built for another transition model (transition ids differ)")


def _check_gmm(md: ModelDir) -> None:
    d, m = md.path, md.manifest
    _check_frontend(d, m, GMM_FRONTEND)
    try:
        gmm = md.gmm()
    except ValueError as e:
        raise ModelDirError(d, "final.mdl", str(e)) from None
    P = int(m["num_pdfs"])
    if int(gmm.am.num_pdfs) != P or int(gmm.transition_model.num_pdfs) != P:
        raise ModelDirError(d, "final.mdl", f"{gmm.am.num_pdfs} GMMs and {gmm.transition_model.num_pdfs} "
                                            f"transition-model pdfs, {MANIFEST} says {P}")
    _check_graph(d, gmm.transition_model, P)


def load_model_dir(path: PathLike, verify_checksums: bool = True) -> ModelDir:
    """Check ``path`` and return it as a :class:`ModelDir`; raises :class:`ModelDirError` naming the piece."""
    d = Path(path)
    if not d.is_dir():
        raise ModelDirError(d, ".", "not a directory")
    m = _read_manifest(d)
    _check_files(d, m, verify_checksums)
    md = ModelDir(d, m)
    if md.kind == "gmm":
        _check_gmm(md)
    else:
        _check_consistency(md)
    if m.get("asrkit_version") != asrkit.__version__:
        log.warning("model %s was exported by asrkit %s, this is %s", d, m.get("asrkit_version"), asrkit.__version__)
    return md
