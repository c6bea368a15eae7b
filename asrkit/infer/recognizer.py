"""Recognition with an exported model: audio -> features -> network -> scores -> HCLG search -> words.

:class:`Recognizer` decodes a whole signal (:meth:`Recognizer.recognize`) or opens a
:class:`StreamingSession` (:meth:`Recognizer.stream`) that takes audio chunk by chunk, as from a
microphone. Both go through the same arithmetic as the recipe's decoding: the student runs ``chunk``
30 ms frames at a time carrying its LSTM state (:func:`asrkit.nnet.infer.log_posteriors` with
``streaming=True``; the teacher sees the whole utterance), scores are log-posteriors minus the floored log
priors in float32, and kaldi-decoder's FasterDecoder searches the senone HCLG at the acoustic scale 1/LM
weight. The streaming session advances the same search frame by frame
(``init_decoding``/``advance_decoding``), so its final result equals :meth:`Recognizer.recognize`'s
(tests/infer/test_recognizer.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch

from asrkit.decode.decoder import DecodeConfig, UttResult, decode_utterance, read_result
from asrkit.fst import kaldi_decoder, kaldifst
from asrkit.infer.frontend import OnlineFeatures, offline_features
from asrkit.infer.model_dir import ModelDir
from asrkit.nnet.infer import log_posteriors

log = logging.getLogger(__name__)


class Recognizer:
    """A loaded model directory ready to decode; ``lm_weight`` / ``chunk`` override the exported choices."""

    def __init__(self, model: ModelDir, lm_weight: Optional[float] = None, chunk: Optional[int] = None,
                 device: str = "cpu"):
        self.model = model
        self.device = device
        self.network = model.network(device)
        self.graph = model.graph()
        self.cmvn = model.cmvn()
        self.log_priors = model.log_priors()
        self.lm_weight = float(lm_weight if lm_weight is not None else model.lm_weight)
        if self.lm_weight <= 0:
            raise ValueError(f"the LM weight must be positive, got {self.lm_weight}")
        self.streaming_network = model.streaming
        self.chunk = int(chunk or model.chunk or 32)
        if self.chunk <= 0:
            raise ValueError(f"chunk must be positive, got {self.chunk}")
        opts = model.decode_options
        self.config = DecodeConfig(acoustic_scale=1.0 / self.lm_weight, beam=float(opts["beam"]),
                                   max_active=int(opts["max_active"]), min_active=int(opts["min_active"]),
                                   allow_partial=bool(opts["allow_partial"]), frame_shift=0.03)

    # ------------------------------------------------------------------ offline

    def features(self, samples: np.ndarray, stored: bool = False) -> np.ndarray:
        """(T, 192) network inputs; ``stored``: fbank quantised as the recipes store it (offline only)."""
        return offline_features(samples, self.cmvn, stored=stored, norm=self.model.norm)

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """(T, 192) features -> (T, senones) float32 log-posteriors minus log priors, as nnet_forward."""
        lp = log_posteriors(self.network, feats, streaming=self.streaming_network, chunk=self.chunk)
        return (lp - self.log_priors[None, :]).astype(np.float32)

    def decode_scores(self, scores: np.ndarray, utt: str = "") -> UttResult:
        return decode_utterance(self.graph, scores, self.config, utt)

    def recognize(self, samples: np.ndarray, utt: str = "") -> UttResult:
        """Words of a 16 kHz mono float32 signal."""
        return self.decode_scores(self.scores(self.features(samples)), utt)

    def stream(self, utt: str = "") -> "StreamingSession":
        if not self.streaming_network:
            raise ValueError(f"model {self.model.path}: a bidirectional network (the teacher) needs the whole "
                             "utterance; stream with a student's model")
        return StreamingSession(self, utt)


class GmmRecognizer:
    """A GMM system's model directory (mono, tri): 13 MFCC with deltas, the file's own mean removed (the
    recipe removes the speaker's; a file is its own speaker here), GMM log-likelihoods, 10 ms frames.
    No streaming: the mean needs the whole utterance."""

    streaming_network = False

    def __init__(self, model: ModelDir, lm_weight: Optional[float] = None, chunk: Optional[int] = None):
        from asrkit.gmm.decode import GmmScorer

        self.model = model
        self.graph = model.graph()
        self.scorer = GmmScorer(model.gmm().am)
        self.lm_weight = float(lm_weight if lm_weight is not None else model.lm_weight)
        if self.lm_weight <= 0:
            raise ValueError(f"the LM weight must be positive, got {self.lm_weight}")
        self.chunk = int(chunk or 32)  # unused: no streaming
        opts = model.decode_options
        self.config = DecodeConfig(acoustic_scale=1.0 / self.lm_weight, beam=float(opts["beam"]),
                                   max_active=int(opts["max_active"]), min_active=int(opts["min_active"]),
                                   allow_partial=bool(opts["allow_partial"]), frame_shift=0.01)

    def features(self, samples: np.ndarray, stored: bool = False) -> np.ndarray:
        from asrkit.features.extract import extract_features, make_extractor
        from asrkit.gmm.data import FeatConfig, make_features
        from asrkit.infer.frontend import stored_like

        mfcc = extract_features(samples, make_extractor("mfcc"))
        if stored:
            mfcc = stored_like(mfcc)
        return make_features({"u": mfcc}, None, FeatConfig(cmn="utt"))["u"]

    def scores(self, feats: np.ndarray) -> np.ndarray:
        return self.scorer(feats)

    def decode_scores(self, scores: np.ndarray, utt: str = "") -> UttResult:
        return decode_utterance(self.graph, scores, self.config, utt)

    def recognize(self, samples: np.ndarray, utt: str = "") -> UttResult:
        return self.decode_scores(self.scores(self.features(samples)), utt)

    def stream(self, utt: str = ""):
        raise ValueError(f"model {self.model.path}: a GMM system normalises each file by its mean: no streaming")


def make_recognizer(model: ModelDir, lm_weight: Optional[float] = None, chunk: Optional[int] = None,
                    device: str = "cpu"):
    """A :class:`Recognizer` for a network's model directory, a :class:`GmmRecognizer` for a GMM's."""
    if model.kind == "gmm":
        return GmmRecognizer(model, lm_weight=lm_weight, chunk=chunk)
    return Recognizer(model, lm_weight=lm_weight, chunk=chunk, device=device)


@dataclass
class ChunkReport:
    """What one audio chunk gave: frames decoded, the partial words, the processing time."""

    samples: int
    frames_decoded: int
    words: List[str]
    changed: bool
    seconds: float


@dataclass
class StreamingSession:
    """Audio in (:meth:`accept`), partial hypotheses out; :meth:`finish` gives the final result."""

    rec: Recognizer
    utt: str = ""
    reports: List[ChunkReport] = field(default_factory=list)

    def __post_init__(self):
        r = self.rec
        if r.model.norm != "global":  # its statistics need the whole utterance
            raise ValueError(f"model {r.model.path}: normalised per {r.model.norm} (cmvn_mode {r.model.norm!r}): "
                             f"streaming needs global CMVN; transcribe it offline")
        self._features = OnlineFeatures(r.cmvn)
        self._pending = np.zeros((0, r.network.cfg.input_dim), np.float32)  # features not yet run
        self._state = None
        cfg = r.config
        self._decoder = kaldi_decoder.FasterDecoder(r.graph.fst, kaldi_decoder.FasterDecoderOptions(
            beam=cfg.beam, max_active=cfg.max_active, min_active=cfg.min_active))
        self._decoder.init_decoding()
        self._frames = 0
        self._words: List[str] = []
        self._tids: List[int] = []
        self._finished = False
        self._seconds = 0.0

    @torch.no_grad()
    def _run(self, feats: np.ndarray) -> None:
        """Network chunks of exactly ``chunk`` frames (the last one shorter), as the offline pass."""
        r = self.rec
        x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))[None].to(r.device)
        logits, self._state = r.network(x, state=self._state)
        lp = torch.log_softmax(logits.float(), -1)[0].cpu().numpy()
        scores = (lp - r.log_priors[None, :]).astype(np.float32)
        mat = r.graph.tid_scores(scores, r.config.acoustic_scale)
        # frames 0.. of this matrix are the decoder's frames self._frames..
        self._decoder.advance_decoding(kaldi_decoder.DecodableCtc(mat, self._frames))
        self._frames += len(feats)

    def _advance(self, feats: np.ndarray, final: bool) -> None:
        self._pending = np.concatenate([self._pending, feats])
        c = self.rec.chunk
        while len(self._pending) >= c:
            self._run(self._pending[:c])
            self._pending = self._pending[c:]
        if final and len(self._pending):
            self._run(self._pending)
            self._pending = self._pending[:0]

    def _best_path(self, use_final_probs: bool):
        ok, lat = self._decoder.get_best_path(use_final_probs=use_final_probs)
        if not ok:
            return None
        ok, isyms, osyms, weight = kaldifst.get_linear_symbol_sequence(lat)
        return (list(isyms), [w for w in osyms if w != 0], weight) if ok else None

    def accept(self, samples) -> ChunkReport:
        """Take one chunk of 16 kHz mono samples; returns the partial result after it."""
        if self._finished:
            raise RuntimeError("accept() after finish()")
        t0 = time.perf_counter()
        self._advance(self._features.accept(samples), final=False)
        words = self._words
        if self._frames:
            best = self._best_path(use_final_probs=False)
            if best is not None:
                words = [self.rec.graph.id2word.get(w, f"<id{w}>") for w in best[1]]
        report = ChunkReport(len(np.asarray(samples).reshape(-1)), self._frames, words, words != self._words,
                             time.perf_counter() - t0)
        self._words = words
        self._seconds += report.seconds
        self.reports.append(report)
        return report

    def finish(self) -> UttResult:
        """Flush the audio's end and return the final result (what :meth:`Recognizer.recognize` gives)."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        t0 = time.perf_counter()
        self._finished = True
        self._advance(self._features.finish(), final=True)
        res = self._final_result()
        res.seconds = self._seconds + time.perf_counter() - t0
        return res

    def _final_result(self) -> UttResult:
        if self._frames == 0:
            return UttResult(self.utt, [], [], [], [], 0, False, error="no frames")
        return read_result(self._decoder, self.rec.graph, self.rec.config, self.utt, self._frames)
