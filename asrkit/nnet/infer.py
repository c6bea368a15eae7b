"""Inference for hybrid decoding: per-frame log-posteriors and ``log_posteriors - log_priors`` scores.

* :func:`log_posteriors` — (T, S) float32 log-softmax outputs for one utterance: the whole utterance
  at once (teacher, or student offline), or, for a unidirectional model with ``streaming=True``,
  ``chunk`` frames at a time carrying the LSTM state (what a streaming recogniser does; equal to the
  whole-utterance pass up to float rounding).
* :func:`log_priors_from_counts` — log priors from ``exp/senone/senone_counts.npy`` (frame counts),
  floored so that senones unseen in training do not get an unbounded boost.
* :func:`write_scores` — scores of a set of cuts written as a Kaldi ark/scp of float32 matrices
  (``<out>/scores.ark``, ``<out>/scores.scp``), what ``python -m asrkit.bin.decode --scores <out>``
  reads (without ``--log-priors``: the priors are already subtracted). ``log_priors.npy`` is written
  beside it; with ``output="log_posteriors"`` the raw log-posteriors are written instead and decode is
  run with ``--log-priors <out>/log_priors.npy``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from asrkit.nnet.checkpoint import load_checkpoint
from asrkit.nnet.models import LstmAcousticModel, ModelConfig, build_model
from asrkit.utils.atomic import atomic_path, mark_done

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
DEFAULT_PRIOR_FLOOR = 1e-8


def load_model(path: PathLike, device="cpu") -> Tuple[LstmAcousticModel, ModelConfig, Dict]:
    """A model from ``best.pt``, an ``epoch-<n>.pt`` or a ``checkpoint-<step>.pt`` (eval mode)."""
    ck = load_checkpoint(path, map_location="cpu")
    cfg = ModelConfig.from_dict(ck["model_config"])
    model = build_model(cfg)
    model.load_state_dict(ck["model"])
    model.to(device).eval()
    meta = {k: ck[k] for k in ("step", "epoch", "dev") if k in ck}
    return model, cfg, meta


@torch.no_grad()
def log_posteriors(model: LstmAcousticModel, feats, streaming: bool = False, chunk: int = 32,
                   device=None) -> np.ndarray:
    """(T, D) features -> (T, num_senones) float32 log-posteriors."""
    device = device or next(model.parameters()).device
    x = torch.as_tensor(np.asarray(feats, dtype=np.float32) if not torch.is_tensor(feats) else feats,
                        dtype=torch.float32).to(device)[None]
    if streaming:
        if model.cfg.bidirectional:
            raise ValueError("streaming needs a unidirectional model (the student); this one is bidirectional")
        if chunk <= 0:
            raise ValueError(f"chunk must be positive, got {chunk}")
        state = None
        outs = []
        for s in range(0, x.shape[1], chunk):
            logits, state = model(x[:, s:s + chunk], state=state)
            outs.append(torch.log_softmax(logits.float(), -1))
        out = torch.cat(outs, 1) if outs else x.new_zeros(1, 0, model.cfg.num_senones)
    else:
        logits, _ = model(x)
        out = torch.log_softmax(logits.float(), -1)
    return out[0].cpu().numpy()


# The log prior of a senone that never occurred in training: its score (log-posterior minus log-prior)
# becomes hugely negative, so the decoder never picks it. As Kaldi nnet1's PdfPrior does: with a
# floored prior instead, the network's tiny but non-zero posterior for an untrained output divided by the
# floor outscored every real senone (a 98% WER of deletions on the synthetic recipe's dev set).
UNSEEN_LOG_PRIOR = 1e10


def log_priors_from_counts(counts, floor: float = DEFAULT_PRIOR_FLOOR) -> np.ndarray:
    """log(max(count / total, floor)) as float32, and :data:`UNSEEN_LOG_PRIOR` for zero counts;
    ``counts`` an array or a .npy path."""
    if isinstance(counts, (str, Path)):
        p = Path(counts)
        if not p.exists():
            raise FileNotFoundError(f"senone counts not found: {p}")
        counts = np.load(p)
    c = np.asarray(counts, dtype=np.float64).reshape(-1)
    if c.sum() <= 0 or (c < 0).any():
        raise ValueError("senone counts must be non-negative with a positive total")
    out = np.log(np.maximum(c / c.sum(), floor))
    out[c == 0] = UNSEEN_LOG_PRIOR
    return out.astype(np.float32)


def write_scores(model: LstmAcousticModel, cuts, reader, out_dir: PathLike, log_priors: Optional[np.ndarray],
                 streaming: bool = False, chunk: int = 32, output: str = "scores",
                 progress: bool = True) -> Dict:
    """Run ``model`` over ``cuts`` and write ``out_dir/scores.{ark,scp}`` (float32 matrices) atomically.

    ``output="scores"``: log-posteriors minus ``log_priors``; ``"log_posteriors"``: the raw outputs.
    Returns a summary (cuts, frames, seconds, frames/s).
    """
    import kaldiio
    from tqdm import tqdm

    if output not in ("scores", "log_posteriors"):
        raise ValueError(f"unknown output {output!r}")
    if output == "scores" and log_priors is None:
        raise ValueError("scores need log priors (pass --priors senone_counts.npy)")
    S = model.cfg.num_senones
    if log_priors is not None and log_priors.shape[0] != S:
        raise ValueError(f"{log_priors.shape[0]} priors but the model has {S} outputs")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ark, scp = out / "scores.ark", out / "scores.scp"
    frames, n, t0 = 0, 0, time.perf_counter()
    total = len(cuts) if hasattr(cuts, "__len__") and not getattr(cuts, "is_lazy", False) else None  # no extra pass
    with atomic_path(scp) as tmp_scp, atomic_path(ark) as tmp_ark:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as w:
            for cut in tqdm(cuts, total=total, desc="forward", unit="cut", disable=not progress, mininterval=1.0):
                lp = log_posteriors(model, reader(cut), streaming=streaming, chunk=chunk)
                if output == "scores":
                    lp = lp - log_priors[None, :]
                w(cut.id, lp.astype(np.float32))
                frames += lp.shape[0]
                n += 1
        # the scp names the temporary ark: point it at the final name
        text = Path(tmp_scp).read_text().replace(str(tmp_ark), str(ark))
        Path(tmp_scp).write_text(text)
        # the ark (inner block) is renamed first, the scp after it: an scp means a complete ark
    if log_priors is not None:
        with atomic_path(out / "log_priors.npy") as tmp:
            np.save(tmp, log_priors)
    mark_done(scp)
    wall = time.perf_counter() - t0
    summary = {"cuts": n, "frames": frames, "seconds": round(wall, 3), "frames_per_s": frames / max(wall, 1e-9),
               "streaming": streaming, "chunk": chunk if streaming else None, "output": output}
    log.info("forward: %d cuts, %d frames in %.1f s, %.0f frames/s (%s%s) -> %s", n, frames, wall,
             summary["frames_per_s"], output, f", streaming chunk {chunk}" if streaming else "", scp)
    return summary


class PosteriorScorer:
    """cut -> ``[T, S]`` pseudo log-likelihoods ``log_posteriors - log_priors`` of a trained network, fed
    as it was trained (its checkpoint's normalisation, speaker statistics over ``cut_sources``): the
    likelihood source of a network realignment (:mod:`asrkit.senone.realign`). ``priors``: senone counts
    (array or ``senone_counts.npy``), floored as for decoding."""

    def __init__(self, model_path: PathLike, cmvn, priors, *cut_sources, device="cpu",
                 floor: float = DEFAULT_PRIOR_FLOOR):
        from asrkit.nnet.dataset import reader_for_checkpoint

        self.model, self.model_cfg, self.meta = load_model(model_path, device)
        self.log_priors = log_priors_from_counts(priors, floor)
        if self.log_priors.shape[0] != self.model_cfg.num_senones:
            raise ValueError(f"{self.log_priors.shape[0]} priors but the network {model_path} has "
                             f"{self.model_cfg.num_senones} outputs")
        self.reader = reader_for_checkpoint(model_path, cmvn, *cut_sources)

    def __call__(self, cut) -> np.ndarray:
        return log_posteriors(self.model, self.reader(cut)) - self.log_priors[None, :]
