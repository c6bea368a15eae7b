"""What decode_data decodes with: a network system (an exported model or a recipe's, through
:class:`~asrkit.infer.recognizer.Recognizer`) or a GMM system of a recipe (``exp/mono``, ``exp/tri``).

Each turns cuts with audio into (utterance, [frames, pdfs] scores) in the recipe's arithmetic and names
its graph and decoder options; :func:`asrkit.infer.decode_data.decode_job` does the rest.

* networks: 64-bin fbank stored as stage 2 stores it, the training CMVN, log-posteriors (a student chunk by
  chunk, as asrkit.bin.nnet_forward with --streaming true) minus the floored log priors, in float32;
* GMMs: 13 MFCC stored as stage 2 stores them, per-speaker mean normalisation over the speaker's
  utterances in the set (asrkit.gmm.data; decode_data keeps a speaker in one job), deltas, the GMM's
  log-likelihoods (asrkit.gmm.decode), 10 ms frames; graph ``exp/<system>/graph``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from asrkit.decode.decoder import DecodeConfig, Graph
from asrkit.infer.model_dir import ModelDir, dev_choice

PathLike = Union[str, Path]
Skipped = List[Tuple[str, str]]  # (cut id, why)


def _features(cuts, work_dir: Path, kind: str):
    """Stage 2's features of ``cuts`` (lilcom storage under ``work_dir``); cuts whose audio does not
    decode are skipped and returned."""
    from lhotse import CutSet

    from asrkit.features.extract import compute_features

    if not len(cuts):
        return [], []
    s = compute_features(cuts, work_dir / kind, "data", kind=kind, num_jobs=1, overwrite=True, progress_bar=False,
                         skip_unreadable=True)
    return CutSet.from_file(s.manifest), list(s.skipped_cuts)


class NnetSystem:
    frame_shift = 0.03
    drop_noise_in_scoring = True  # asrkit.bin.decode scores without <UNK> and noise tokens

    def __init__(self, model: ModelDir, lm_weight: Optional[float] = None, chunk: Optional[int] = None):
        from asrkit.infer.recognizer import Recognizer

        self.rec = Recognizer(model, lm_weight=lm_weight, chunk=chunk)
        self.graph: Graph = self.rec.graph
        self.config: DecodeConfig = self.rec.config
        self.lm_weight = self.rec.lm_weight

    def scores(self, cuts, work_dir: Path) -> Tuple[Iterator, Skipped, float]:
        from asrkit.features.reader import FeatureReader
        from asrkit.nnet.infer import log_posteriors

        feats_cuts, skipped = _features(cuts, work_dir, "fbank")
        rec = self.rec  # the network's normalisation; per speaker: over the speakers of these cuts
        reader = FeatureReader(rec.cmvn).with_norm(rec.model.norm, feats_cuts)

        def gen():
            for cut in feats_cuts:
                lp = log_posteriors(rec.network, reader(cut), streaming=rec.streaming_network, chunk=rec.chunk)
                yield cut.id, (lp - rec.log_priors[None, :]).astype(np.float32)

        return gen(), skipped, sum(c.duration for c in feats_cuts)


@dataclass
class GmmSystem:
    """A recipe's GMM system used in place: ``final.mdl``, ``graph/``, dev's LM weight and decoder options."""

    system_dir: Path
    lm_weight: float
    options: Dict
    frame_shift = 0.01
    # asrkit.bin.decode_gmm scores every token, <UNK> included (unlike the networks' asrkit.bin.decode):
    # the recipe's GMM WERs are reproduced only by scoring the same way
    drop_noise_in_scoring = False

    @classmethod
    def from_recipe(cls, exp_dir: PathLike, system: str, dev_set: str = "dev",
                    lm_weight: Optional[float] = None) -> "GmmSystem":
        d = Path(exp_dir) / system
        for name in ("final.mdl", "graph/HCLG.fst"):
            if not (d / name).exists():
                raise FileNotFoundError(f"{d / name} not found: is {system} a GMM system of this recipe?")
        choice = dev_choice(d / f"decode_{dev_set}")
        return cls(d, float(lm_weight if lm_weight is not None else choice["lm_weight"]), choice)

    @property
    def graph(self) -> Graph:
        if not hasattr(self, "_graph"):
            self._graph = Graph.load(self.system_dir / "graph")
        return self._graph

    @property
    def config(self) -> DecodeConfig:
        o = self.options  # asrkit.bin.decode_gmm's defaults where the dev decoding does not say
        return DecodeConfig(acoustic_scale=1.0 / self.lm_weight, beam=float(o.get("beam", 13.0)),
                            max_active=int(o.get("max_active", 7000)), min_active=int(o.get("min_active", 200)),
                            allow_partial=bool(o.get("allow_partial", True)), frame_shift=0.01)

    def scores(self, cuts, work_dir: Path) -> Tuple[Iterator, Skipped, float]:
        from asrkit.gmm import FeatConfig, GmmModel, load_corpus
        from asrkit.gmm.decode import gmm_scores

        feats_cuts, skipped = _features(cuts, work_dir, "mfcc")
        if not len(feats_cuts):
            return iter(()), skipped, 0.0
        corpus = load_corpus(feats_cuts, FeatConfig(cmn="speaker"), need_text=False)
        model = GmmModel.load(self.system_dir / "final.mdl")
        return gmm_scores(model, corpus.feats), skipped, sum(c.duration for c in feats_cuts)


def is_gmm_system(exp_dir: PathLike, system: str) -> bool:
    d = Path(exp_dir) / system
    return (d / "final.mdl").exists() and not (d / "best.pt").exists()
