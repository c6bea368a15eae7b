"""Teacher inference over unlabelled cuts into top-k shards: parallel jobs, resumable, deterministic.

Shard plan. The cuts, in manifest order, are cut into shards of ``shard_size`` consecutive cuts; shard
``s`` (0-based) belongs to job ``s % num_jobs + 1`` (so job J of N labels shards J-1, J-1+N, ...). A
shard is written whole under a temporary name and renamed (:mod:`asrkit.pseudo.shards`), then its
sidecar ``shard-SSSSS.json`` (checksum, utterances, statistics, skipped and filtered cuts), then the
``.shard-SSSSS.bin.done`` marker. A re-run skips shards that have a marker, an unchanged sidecar
configuration, the same input cuts and a file whose checksum matches; it redoes every other shard (a
killed job loses at most the shard it was writing; leftover temporary files are removed). Inference
is deterministic (fixed batches: the shard's cuts sorted by length, no dropout), so a resumed job
writes byte-identical shards and indices on the same machine and device.

Each job writes ``index.job<J>.json``; :func:`merge_indices` combines them into ``index.json`` with the
totals, after checking that every shard of the plan is there exactly once.

The teacher is any ``torch.nn.Module`` mapping ``(B, T, D)`` padded features to ``(B, T, S)`` logits;
if its ``forward`` takes ``lengths`` they are passed (bidirectional models must not see padding), and
a tuple output's first element is used (``asrkit.nnet`` models return ``(logits, state)``).

A teacher temperature is applied here (``temperature``: the stored posteriors are
``softmax(logits / temperature)``); the stored labels then carry it, recorded in the index.
"""
from __future__ import annotations

import inspect
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from asrkit.pseudo.shards import (INDEX_FORMAT, blake2b_bytes, file_checksum, meta_name, shard_name,
                                  write_compact_index, write_shard)
from asrkit.pseudo.stats import LabelStats, frame_stats, summary_line
from asrkit.utils.atomic import atomic_write_text, done_marker, is_done, mark_done

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
FeatureFn = Callable[[object], np.ndarray]
ENTROPY_DEF = "entropy in nats of the renormalised top-k distribution (not of the full posterior)"


@dataclass
class LabelPlan:
    """Everything that fixes the bytes of a shard; a re-run with another plan is refused."""

    k: int = 20
    num_senones: int = 0
    shard_size: int = 500
    temperature: float = 1.0
    min_confidence: float = 0.0
    tree_checksum: Optional[str] = None
    teacher: Optional[str] = None  # e.g. the teacher checkpoint's checksum
    batch_frames: int = 20000
    max_batch_size: int = 64

    def to_dict(self) -> Dict:
        return asdict(self)


class PlanMismatchError(ValueError):
    pass


def _json(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def model_forward(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Logits of ``model`` on a padded batch (passes ``lengths`` if ``forward`` accepts it)."""
    takes = getattr(model, "_asrkit_takes_lengths", None)
    if takes is None:
        try:
            takes = "lengths" in inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            takes = False
        try:
            model._asrkit_takes_lengths = takes
        except AttributeError:
            pass
    out = model(x, lengths=lengths) if takes else model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out


def topk_posteriors(logits: torch.Tensor, k: int, temperature: float = 1.0):
    """``(..., S)`` logits -> top-k ``ids``, ``probs`` of ``softmax(logits / temperature)`` (best first),
    ``mass`` (their sum), and a per-frame finiteness flag (False where the outputs are NaN/inf).

    One fused softmax then ``topk`` on the probabilities: on CPU that is faster than ``logsumexp`` +
    ``topk`` on the logits (which allocates several (..., S) temporaries)."""
    z = logits.float()
    if temperature != 1.0:
        z = z / temperature
    p = torch.softmax(z, dim=-1)
    probs, ids = torch.topk(p, k, dim=-1, largest=True, sorted=True)
    mass = probs.sum(-1)
    return ids, probs, mass, torch.isfinite(mass)


def make_batches(lengths: Sequence[int], batch_frames: int, max_batch_size: int) -> List[List[int]]:
    """Positions grouped into batches: sorted by length (longest first, ties by position), each batch
    at most ``batch_frames`` padded frames and ``max_batch_size`` rows (a longer utterance goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches, cur = [], []
    for i in order:
        if cur and ((len(cur) + 1) * lengths[cur[0]] > batch_frames or len(cur) >= max_batch_size):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def infer_num_senones(model: torch.nn.Module, input_dim: int = 192, device="cpu") -> int:
    cfg = getattr(model, "cfg", None)
    if cfg is not None and getattr(cfg, "num_senones", None):
        return int(cfg.num_senones)
    with torch.inference_mode():
        out = model_forward(model, torch.zeros(1, 1, input_dim, device=device),
                            torch.ones(1, dtype=torch.int64))
    return int(out.shape[-1])


def _inputs_digest(cut_ids: Sequence[str]) -> str:
    return blake2b_bytes("\n".join(cut_ids).encode("utf-8"))


def _load_features(cut, feature_fn: FeatureFn, input_dim: Optional[int]) -> Tuple[Optional[np.ndarray], str]:
    try:
        feats = feature_fn(cut)
    except Exception as e:  # noqa: BLE001 - one unreadable cut among thousands is skipped and reported
        return None, f"features failed to load: {type(e).__name__}: {e}"
    feats = np.asarray(feats)
    if feats.ndim != 2:
        return None, f"features of shape {feats.shape}, expected (T, D)"
    if feats.shape[0] == 0:
        return None, "0 frames"
    if input_dim is not None and feats.shape[1] != input_dim:
        raise ValueError(f"cut {cut.id}: features of dim {feats.shape[1]}, the teacher takes {input_dim}")
    if not np.isfinite(feats).all():
        return None, "NaN or inf in features"
    return feats.astype(np.float32, copy=False), ""


class _Labeller:
    def __init__(self, model, feature_fn, out_dir: Path, plan: LabelPlan, device, input_dim, progress):
        self.model, self.feature_fn, self.out_dir, self.plan = model, feature_fn, out_dir, plan
        self.device, self.input_dim, self.progress = device, input_dim, progress

    def shard_done(self, s: int, cut_ids: List[str], verify: bool) -> Optional[Dict]:
        path, meta_path = self.out_dir / shard_name(s), self.out_dir / meta_name(s)
        if not (is_done(path) and meta_path.exists()):
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError:
            log.warning("shard %d: unreadable sidecar %s: relabelling", s, meta_path)
            return None
        if meta.get("plan") != self.plan.to_dict():
            diff = [f"{k}: on disk {meta.get('plan', {}).get(k)!r}, now {v!r}"
                    for k, v in self.plan.to_dict().items() if meta.get("plan", {}).get(k) != v]
            raise PlanMismatchError(f"{meta_path}: labels on disk were made with another configuration "
                                    f"({'; '.join(diff)}); use a fresh --out-dir or remove the old one")
        if meta.get("inputs") != _inputs_digest(cut_ids):
            log.warning("shard %d: its cuts changed since it was labelled: relabelling", s)
            return None
        if verify and file_checksum(path) != meta["checksum"]:
            log.warning("shard %d: %s fails its checksum: relabelling", s, path)
            return None
        return meta

    def clean_partial(self, s: int) -> None:
        stem = shard_name(s)[: -len(".bin")]
        for p in self.out_dir.glob(f".{stem}.tmp*"):
            log.info("removing the partial output of a killed job: %s", p)
            p.unlink()
        done_marker(self.out_dir / shard_name(s)).unlink(missing_ok=True)

    def label_shard(self, s: int, cuts: List, pbar=None) -> Dict:
        plan = self.plan
        cut_ids = [c.id for c in cuts]
        self.clean_partial(s)
        stats = LabelStats()
        feats: Dict[int, np.ndarray] = {}
        for pos, cut in enumerate(cuts):
            f, why = _load_features(cut, self.feature_fn, self.input_dim)
            if f is None:
                stats.skipped.append({"id": cut.id, "reason": why})
                log.warning("skipping cut %s: %s", cut.id, why)
            else:
                feats[pos] = f
        results: Dict[int, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        positions = sorted(feats)
        lens = [feats[p].shape[0] for p in positions]
        for batch in make_batches(lens, plan.batch_frames, plan.max_batch_size):
            rows = [positions[i] for i in batch]
            B, Tmax = len(rows), feats[rows[0]].shape[0]
            D = feats[rows[0]].shape[1]
            # padded in numpy: torch's multi-threaded small copies are slow on a loaded machine
            xn = np.zeros((B, Tmax, D), dtype=np.float32)
            for b, p in enumerate(rows):
                xn[b, :feats[p].shape[0]] = feats[p]
            x = torch.from_numpy(xn)
            lengths = torch.tensor([feats[p].shape[0] for p in rows], dtype=torch.int64)
            with torch.inference_mode():
                logits = model_forward(self.model, x.to(self.device), lengths.to(self.device))
                if logits.shape[:2] != (B, Tmax) or logits.shape[-1] != plan.num_senones:
                    raise ValueError(f"teacher output of shape {tuple(logits.shape)} for input {(B, Tmax, D)}; "
                                     f"expected (B, T, num_senones={plan.num_senones})")
                ids, probs, mass, finite = topk_posteriors(logits, plan.k, plan.temperature)
                ids = ids.to(torch.int32).cpu().numpy()
                probs, mass, finite = probs.cpu().numpy(), mass.cpu().numpy(), finite.cpu().numpy()
            for b, p in enumerate(rows):
                T = int(lengths[b])
                if not finite[b, :T].all():
                    stats.skipped.append({"id": cuts[p].id, "reason": "non-finite teacher outputs"})
                    log.warning("skipping cut %s: non-finite teacher outputs", cuts[p].id)
                    continue
                results[p] = (ids[b, :T].astype(np.uint16), probs[b, :T].astype(np.float16),
                              mass[b, :T].astype(np.float16))
            if pbar is not None:
                pbar.update(int(lengths.sum()))
        out_ids, out_i, out_p, out_m, utts = [], [], [], [], []
        for p in sorted(results):
            i, pr, m = results[p]
            sums = frame_stats(pr, m)
            T = i.shape[0]
            mean_top1 = sums["top1_sum"] / T
            if mean_top1 < plan.min_confidence:
                stats.filtered.append({"id": cuts[p].id, "mean_top1": mean_top1, "frames": T})
                continue
            stats.add_utt(T, sums)
            out_ids.append(cuts[p].id)
            out_i.append(i), out_p.append(pr), out_m.append(m)
            utts.append([cuts[p].id, T])
        stats.skipped.sort(key=lambda d: cut_ids.index(d["id"]))
        path = self.out_dir / shard_name(s)
        checksum, nbytes = write_shard(path, out_ids, out_i, out_p, out_m, plan.k, plan.num_senones)
        meta = {"index": s, "name": shard_name(s), "checksum": checksum, "bytes": nbytes,
                "plan": plan.to_dict(), "inputs": _inputs_digest(cut_ids), "num_inputs": len(cut_ids),
                "utts": utts, "stats": stats.to_dict(), "skipped": stats.skipped, "filtered": stats.filtered}
        atomic_write_text(self.out_dir / meta_name(s), _json(meta))
        mark_done(path)
        return meta


def _shards_of(cuts: Iterable, shard_size: int):
    cur, s = [], 0
    for c in cuts:
        cur.append(c)
        if len(cur) == shard_size:
            yield s, cur
            cur, s = [], s + 1
    if cur:
        yield s, cur


def label_cuts(model: torch.nn.Module, cuts: Iterable, feature_fn: FeatureFn, out_dir: PathLike,
               shard_size: int = 500, k: int = 20, job: int = 1, num_jobs: int = 1, *,
               num_senones: Optional[int] = None, tree_checksum: Optional[str] = None,
               teacher: Optional[str] = None, temperature: float = 1.0, min_confidence: float = 0.0,
               batch_frames: int = 20000, max_batch_size: int = 64, device: Union[str, torch.device] = "cpu",
               input_dim: Optional[int] = 192, verify_existing: bool = True, progress: bool = False) -> Dict:
    """Label this job's shards of ``cuts`` with the ``model``'s top-k posteriors; return the job index.

    ``feature_fn(cut) -> (T, D) float array`` (the stacked, normalised features; e.g.
    ``asrkit.features.FeatureReader(cmvn)``). ``job`` is 1-based (``JOB=1:N``). ``num_senones`` (default:
    from the model) is checked against the model's output; ``tree_checksum`` (``shards.tree_checksum``
    of the senone tree) and ``teacher`` (any identifier, e.g. the checkpoint's checksum) are recorded.
    ``temperature`` is the teacher's: the stored posteriors are ``softmax(logits / temperature)``.
    ``min_confidence``: utterances whose mean top-1 posterior is below it are dropped (and listed).
    Cuts the teacher cannot process (features that fail to load, 0 frames, NaN/inf in features or
    outputs) are skipped and listed with their ids and reasons.
    """
    if not 1 <= job <= num_jobs:
        raise ValueError(f"job {job} outside 1..{num_jobs}")
    if shard_size < 1 or k < 1:
        raise ValueError("shard_size and k must be positive")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    model_S = infer_num_senones(model, input_dim or 192, device)
    if num_senones is not None and int(num_senones) != model_S:
        raise ValueError(f"the teacher has {model_S} outputs but num_senones={num_senones} was given")
    if k > model_S:
        raise ValueError(f"k={k} is larger than the number of senones {model_S}")
    plan = LabelPlan(k=k, num_senones=model_S, shard_size=shard_size, temperature=float(temperature),
                     min_confidence=float(min_confidence), tree_checksum=tree_checksum, teacher=teacher,
                     batch_frames=batch_frames, max_batch_size=max_batch_size)
    lab = _Labeller(model, feature_fn, out_dir, plan, device, input_dim, progress)
    t0 = time.time()
    metas, num_shards, num_cuts, done_before, new_frames = [], 0, 0, 0, 0
    pbar = None
    if progress:
        from tqdm import tqdm

        pbar = tqdm(desc=f"pseudo-label job {job}/{num_jobs}", unit="frame", unit_scale=True)
    try:
        for s, shard_cuts in _shards_of(cuts, shard_size):
            num_shards, num_cuts = s + 1, num_cuts + len(shard_cuts)
            if s % num_jobs != job - 1:
                continue
            meta = lab.shard_done(s, [c.id for c in shard_cuts], verify_existing)
            if meta is not None:
                done_before += 1
            else:
                meta = lab.label_shard(s, shard_cuts, pbar)
                new_frames += meta["stats"]["frames"]
                log.info("shard %d: %s", s, summary_line(meta["stats"]))
            metas.append(meta)
    finally:
        if pbar is not None:
            pbar.close()
        model.train(was_training)
    total = LabelStats()
    for m in metas:
        total = total.merge(LabelStats.from_dict(m["stats"], m["skipped"], m["filtered"]))
    index = {"format": INDEX_FORMAT, "job": job, "num_jobs": num_jobs, "num_shards": num_shards,
             "num_cuts": num_cuts, **plan.to_dict(), "entropy": ENTROPY_DEF,
             "shards": [_index_entry(m) for m in metas], "totals": total.to_dict()}
    jpath = out_dir / f"index.job{job}.json"
    atomic_write_text(jpath, _json(index))
    mark_done(jpath)
    dt = time.time() - t0
    log.info("pseudo-label job %d/%d: %d shards (%d already done), %s; %d new frames in %.1f s (%.0f frames/s)",
             job, num_jobs, len(metas), done_before, summary_line(index["totals"]), new_frames, dt,
             new_frames / max(dt, 1e-9))
    return index


def _index_entry(meta: Dict) -> Dict:
    return {key: meta[key] for key in ("index", "name", "checksum", "bytes", "num_inputs", "utts", "stats",
                                       "skipped", "filtered")}


def merge_indices(out_dir: PathLike, verify: bool = True) -> Dict:
    """Combine ``index.job*.json`` into ``index.json`` (with totals) once every shard is there."""
    out_dir = Path(out_dir)
    paths = sorted(out_dir.glob("index.job*.json"))
    if not paths:
        raise FileNotFoundError(f"no per-job indices (index.job*.json) in {out_dir}")
    jobs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    plan_keys = list(LabelPlan().to_dict())
    ref = jobs[0]
    for p, j in zip(paths, jobs):
        for key in plan_keys + ["num_jobs", "num_shards", "num_cuts"]:
            if j.get(key) != ref.get(key):
                raise PlanMismatchError(f"{p}: {key}={j.get(key)!r} but {paths[0]} has {ref.get(key)!r}; "
                                        f"the jobs were run with different options")
    seen_jobs = sorted(j["job"] for j in jobs)
    missing_jobs = sorted(set(range(1, ref["num_jobs"] + 1)) - set(seen_jobs))
    if missing_jobs:
        raise FileNotFoundError(f"{out_dir}: no index from jobs {missing_jobs} of {ref['num_jobs']}: run them first")
    shards: Dict[int, Dict] = {}
    for j in jobs:
        for e in j["shards"]:
            shards[e["index"]] = e
    missing = sorted(set(range(ref["num_shards"])) - set(shards))
    if missing:
        raise FileNotFoundError(f"{out_dir}: shards {missing[:10]} of {ref['num_shards']} are missing")
    entries = [shards[s] for s in range(ref["num_shards"])]
    if verify:
        for e in entries:
            actual = file_checksum(out_dir / e["name"])
            if actual != e["checksum"]:
                raise ValueError(f"{out_dir / e['name']}: checksum mismatch ({actual}, index says "
                                 f"{e['checksum']}): re-run its labelling job to regenerate it")
    total = LabelStats()
    for e in entries:
        total = total.merge(LabelStats.from_dict(e["stats"], e["skipped"], e["filtered"]))
    index = {"format": INDEX_FORMAT, "num_shards": ref["num_shards"], "num_cuts": ref["num_cuts"],
             **{key: ref[key] for key in plan_keys}, "entropy": ENTROPY_DEF,
             "bytes": sum(e["bytes"] for e in entries), "shards": entries, "totals": total.to_dict()}
    path = out_dir / "index.json"
    text = _json(index)
    done_marker(path).unlink(missing_ok=True)
    write_compact_index(out_dir, index, text)  # what a reader opens at scale (shards.PseudoLabelReader)
    atomic_write_text(path, text)
    mark_done(path)
    log.info("merged %d job indices into %s: %d shards, %s", len(jobs), path, len(entries),
             summary_line(index["totals"]))
    return index
