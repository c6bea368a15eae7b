#!/usr/bin/env python
"""Benchmark: how peak memory and wall time of the whole-set stage drivers grow with the corpus.

For each size N in ``--sizes`` (cuts; default 10^3, 10^4, 10^5) it builds, once, under ``--work``:

* ``cuts_fbank.jsonl.gz`` (N cuts with 64-dim fbank; the first half labelled, with text and stage-6
  ``senones`` targets; the second half without text: the machine-labelled part), ``cuts_lab`` /
  ``cuts_unlab`` (those halves), ``cuts_mfcc`` (N cuts with 13-dim MFCC and text, for the GMM) and
  ``cuts_audio`` (N cuts with recordings only, for extraction planning);
* ``pseudo/``: the top-k pseudo-labels of the unlabelled half, written by ``label_cuts`` itself (a
  linear "teacher", k = 4, 64 senones, shards of 500 cuts).

The cuts reuse a few real utterances of speechocean762 under new ids (N / 10 speakers): their
features, targets and audio were computed once by the library's own writers (``compute_features``,
NumpyFilesWriter targets as stage 6 writes them), so nothing is synthesised at scale.

Then every stage runs in a fresh subprocess; the parent samples its RSS, kills it past ``--cap-s``
seconds or ``--max-rss-gb`` (the row says ``capped``), and reads its peak RSS from ``wait4`` (the
kernel's ``ru_maxrss``). Stages:

* ``import``: the bare reference: python + numpy + torch + lhotse + asrkit imported, nothing read;
* ``subset``: ``subset_manifest`` (stage 14) of half the hours of ``cuts_fbank``;
* ``subset_hash``: the same request in hash order (``hashed_subset_manifest``, ``subset_cuts --order hash``);
* ``cmvn``: ``compute_cmvn`` over ``cuts_fbank`` (every feature matrix read once);
* ``extract_plan``: ``plan_extraction`` of ``cuts_audio`` (the chunks ``compute_features`` would give
  its jobs; no audio is read) iterated to the end;
* ``pseudo_plan``: ``label_cuts`` re-run over ``cuts_unlab`` with every shard done (the plan pass:
  shard membership, per-shard checks, the job index), then ``merge_indices`` (``index.json``, every
  shard's blake2b verified);
* ``student``: the student's loaders as ``train_student`` builds them (labelled ``cuts_lab`` with hard
  targets, machine-labelled ``cuts_unlab`` with the pseudo-labels, bucketing samplers, the interleaved
  schedule; ``num_workers=0``), timed to the first batch and to 100 batches;
* ``student_shards``: the same start and 100 batches with ``loader: shards`` (``asrkit.nnet.shard_loader``):
  labelled and machine-labelled training shards (``tshards/lab``, ``tshards/mach``, written once per set
  by ``write_training_shards``, 32 MiB shards) read in order through the streaming bucketing sampler
  (a buffer of ``TrainConfig.shuffle_buffer`` chunks); the start includes counting each stream's first
  epoch on the shards' sidecars, as the trainer does for its schedule;
* ``gmm``: one pass of GMM statistics accumulation (``asrkit.gmm.accumulate``) over ``cuts_mfcc``
  (speaker CMN + deltas), with single-Gaussian pdfs and alignments made up per utterance (a cycle over
  the pdfs), so what is measured is reading the features and accumulating;
* ``report``: ``write_report`` with two systems decoded on a test set of N utterances (the paired
  bootstrap reads every utterance's reference and hypotheses).

Output: a table (peak RSS, its ratio to ``import``, wall time; per stage the growth exponents fitted
on log-log axes: of peak RSS, of RSS above ``import``, of wall time and of wall time above ``import``,
whose ~10-30 s of imports on a loaded 2-core machine hide the growth at small sizes), ``--json`` and
``--plot`` (log-log). The sets are built in a child as well: a child's ``ru_maxrss`` starts from its
parent's RSS at fork, so the parent stays a small process.

    .venv/bin/python tools/bench/scale.py --sizes 1000,10000,100000 --json docs/scale_after.json \\
        --plot docs/scale_after.png [--stages subset,cmvn] [--cap-s 600] [--max-rss-gb 6]
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

STAGES = ["import", "subset", "subset_hash", "cmvn", "extract_plan", "pseudo_plan", "student", "student_shards", "gmm", "report"]
CORPUS = Path("/work/shared/corpora/speechocean762")
NUM_REAL = 4  # real utterances reused under new ids
SPEAKER_EVERY = 10  # cuts per speaker
PSEUDO_K, PSEUDO_SENONES, SHARD_SIZE = 4, 64, 500
NUM_SENONES = PSEUDO_SENONES


# ------------------------------------------------------------------ building the sets
def _real_utterances(n: int) -> List[tuple]:
    """(utt id, flac path, text) of the first ``n`` utterances of speechocean762's train set."""
    text = {}
    for line in (CORPUS / "train" / "text").read_text(encoding="utf-8").splitlines():
        uid, _, words = line.partition("\t") if "\t" in line else line.partition(" ")
        text[uid.strip()] = words.strip()
    out = []
    for spk in sorted((CORPUS / "WAVE").iterdir()):
        for f in sorted(spk.glob("*.flac")):
            if f.stem in text:
                out.append((f.stem, f, text[f.stem]))
            if len(out) == n:
                return out
    raise SystemExit(f"fewer than {n} utterances with text under {CORPUS}")


def build_base(base: Path) -> Dict:
    """A few real cuts with fbank + senones, MFCC, audio; the CMVN; as JSON-ready dicts."""
    done = base / "templates.json"
    if done.exists():
        return json.loads(done.read_text())
    import numpy as np
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
    from lhotse.features.io import NumpyFilesWriter
    from lhotse.utils import fastcopy

    from asrkit.features.cmvn import compute_cmvn
    from asrkit.features.extract import compute_features
    from asrkit.features.stack import STACKED_FRAME_SHIFT, num_frames, num_stacked_frames
    from asrkit.nnet.dataset import TARGETS_FIELD

    base.mkdir(parents=True, exist_ok=True)
    cuts = []
    for uid, path, words in _real_utterances(NUM_REAL):
        rec = Recording.from_file(path, recording_id=uid)
        sup = SupervisionSegment(id=uid, recording_id=uid, start=0.0, duration=rec.duration, channel=0,
                                 text=words, speaker=uid[:4], language="English")
        cuts.append(MonoCut(id=uid, start=0.0, duration=rec.duration, channel=0, recording=rec, supervisions=[sup]))
    audio = CutSet.from_cuts(cuts)
    fb = compute_features(audio, base / "fbank", "real", kind="fbank", progress_bar=False)
    mf = compute_features(audio, base / "mfcc", "real", kind="mfcc", progress_bar=False)
    fcuts = list(CutSet.from_file(fb.manifest))
    compute_cmvn(fb.manifest, base / "cmvn.pt", progress_bar=False)
    store = base / "targets"
    writer = NumpyFilesWriter(store)
    rng = np.random.default_rng(0)
    with_targets = []
    for c in fcuts:
        T = num_stacked_frames(num_frames(c.duration, c.features.sampling_rate))
        arr = rng.integers(0, NUM_SENONES, T).astype(np.int16)
        ta = writer.store_array(c.id, arr, frame_shift=STACKED_FRAME_SHIFT, temporal_dim=0, start=c.start)
        ta = fastcopy(ta, array=fastcopy(ta.array, storage_path=str(store)))
        with_targets.append(c.with_custom(TARGETS_FIELD, ta))
    tpl = {"fbank": [c.to_dict() for c in with_targets], "mfcc": [c.to_dict() for c in CutSet.from_file(mf.manifest)],
           "audio": [c.to_dict() for c in audio], "cmvn": str(base / "cmvn.pt")}
    done.write_text(json.dumps(tpl))
    return tpl


def _line_template(d: Dict, text: bool, custom: bool = True) -> str:
    """The template cut ``d`` as one JSON line with placeholders for the new cut and speaker ids."""
    d = json.loads(json.dumps(d))
    d["id"] = "@CUT@"
    if not custom:
        d.pop("custom", None)
    for s in d.get("supervisions", []):
        s["id"], s["speaker"] = "@CUT@", "@SPK@"
        if not text:
            s.pop("text", None)
    return json.dumps(d, separators=(",", ":"))


def _lines(templates: List[Dict], lo: int, hi: int, text, custom: bool = True):
    """Lines of cuts ``lo..hi-1``: template ``i % len`` under id ``c<i>``, speaker ``s<i // 10>``;
    ``text(i)``: whether cut ``i`` keeps its transcript."""
    tpl = {(k, t): _line_template(d, t, custom) for k, d in enumerate(templates) for t in (True, False)}
    for i in range(lo, hi):
        line = tpl[(i % len(templates), bool(text(i)))]
        yield line.replace("@CUT@", f"c{i:08d}").replace("@SPK@", f"s{i // SPEAKER_EVERY:07d}")


def _write_jsonl(path: Path, lines) -> None:
    if path.exists():  # written whole by an earlier, interrupted build (renamed into place when complete)
        return
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def build_size(work: Path, n: int, tpl: Dict) -> Path:
    d = work / f"n{n}"
    if (d / "ready").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    half = n // 2
    fb, mf, au = tpl["fbank"], tpl["mfcc"], tpl["audio"]
    labelled = lambda i: i < half  # noqa: E731
    _write_jsonl(d / "cuts_fbank.jsonl.gz", _lines(fb, 0, n, labelled))
    _write_jsonl(d / "cuts_lab.jsonl.gz", _lines(fb, 0, half, labelled))
    # the unlabelled half: no senones either (stage 6 makes targets for labelled sets only)
    _write_jsonl(d / "cuts_unlab.jsonl.gz", _lines(fb, half, n, labelled, custom=False))
    _write_jsonl(d / "cuts_mfcc.jsonl.gz", _lines(mf, 0, n, lambda i: True))
    _write_jsonl(d / "cuts_audio.jsonl.gz", _lines(au, 0, n, lambda i: True))
    _label(d, tpl)
    _decodes(d, n)
    (d / "ready").write_text("")
    return d


def shards_dir(d: Path, codec: str) -> Path:
    """Where a set's training shards of feature codec ``codec`` are (lilcom: ``tshards``, the writer's default)."""
    return d / ("tshards" if codec == "lilcom" else f"tshards_{codec}")


def build_train_shards(d: Path, tpl: Dict, codec: str = "lilcom") -> None:
    """The training shards of a built set (``student_shards``), written by the library's writer with feature
    codec ``codec``; the stored features are read once per real utterance (the cuts share them)."""
    from asrkit.features.reader import load_frames
    from asrkit.nnet.shard_loader import write_training_shards
    from asrkit.pseudo.shards import PseudoLabelReader

    cache = {}

    def frames(cut):
        key = (cut.features.storage_path, cut.features.storage_key)
        if key not in cache:
            cache[key] = load_frames(cut)
        return cache[key]

    out = shards_dir(d, codec)
    if not (out / "lab" / "index.json").exists():
        write_training_shards([d / "cuts_lab.jsonl.gz"], out / "lab", "hard", num_senones=NUM_SENONES, frames=frames,
                              feats_codec=codec)
    if not (out / "mach" / "index.json").exists():
        write_training_shards([d / "cuts_unlab.jsonl.gz"], out / "mach", "soft", PseudoLabelReader(d / "pseudo"),
                              frames=frames, feats_codec=codec)


def _label(d: Path, tpl: Dict) -> None:
    """Pseudo-labels of the unlabelled half, by ``label_cuts`` with a fixed random linear teacher."""
    import torch
    from lhotse import CutSet

    from asrkit.features.reader import FeatureReader
    from asrkit.pseudo.label import label_cuts, merge_indices

    torch.manual_seed(0)
    teacher = torch.nn.Linear(192, PSEUDO_SENONES)
    reader, cache = FeatureReader(tpl["cmvn"]), {}

    def features(cut):  # the cuts share a few stored matrices: read each once
        key = (cut.features.storage_path, cut.features.storage_key)
        if key not in cache:
            cache[key] = reader(cut)
        return cache[key]

    label_cuts(teacher, CutSet.from_jsonl_lazy(d / "cuts_unlab.jsonl.gz"), features, d / "pseudo",
               shard_size=SHARD_SIZE, k=PSEUDO_K, tree_checksum="bench")
    merge_indices(d / "pseudo")


def _decodes(d: Path, n: int) -> None:
    """A test set of ``n`` utterances and two systems' decodes of it, as stage 13 leaves them."""
    import random

    rng = random.Random(0)
    words = "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE ZERO".split()
    ref = {f"c{i:08d}": [rng.choice(words) for _ in range(5)] for i in range(n)}
    (d / "data" / "test").mkdir(parents=True, exist_ok=True)
    (d / "data" / "test" / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in ref.items()))
    for name, err in (("student_sup", 0.2), ("student_ssl_inter", 0.15)):
        dd = d / "exp" / name / "decode_test"
        dd.mkdir(parents=True, exist_ok=True)
        hyp, errs, total = [], 0, 0
        for u, w in ref.items():
            h = [x if rng.random() > err else rng.choice(words) for x in w]
            errs += sum(a != b for a, b in zip(h, w))
            total += len(w)
            hyp.append(f"{u} {' '.join(h)}\n")
        (dd / "hyp.txt").write_text("".join(hyp))
        (dd / "best_wer").write_text(f"%WER {100.0 * errs / total:.2f} [ {errs} / {total}, 0 ins, 0 del, "
                                     f"{errs} sub ] lmwt 10\n")


# ------------------------------------------------------------------ the stages (run in a child)
def stage_import(d: Path, tpl: Dict) -> Dict:
    import lhotse  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401

    import asrkit.data.subset  # noqa: F401
    import asrkit.nnet.ssl  # noqa: F401
    import asrkit.pseudo.label  # noqa: F401
    return {}


def stage_subset(d: Path, tpl: Dict) -> Dict:
    from asrkit.data.subset import subset_manifest

    info = subset_manifest(d / "cuts_fbank.jsonl.gz", d / "out_subset.jsonl.gz", seed=0,
                           ratio=0.5, ratio_of=d / "cuts_fbank.jsonl.gz")
    return {"cuts": info.cuts, "hours": round(info.hours, 3)}


def stage_subset_hash(d: Path, tpl: Dict) -> Dict:
    from asrkit.data.hash_subset import hashed_subset_manifest

    info = hashed_subset_manifest(d / "cuts_fbank.jsonl.gz", d / "out_subset_hash.jsonl.gz", seed=0,
                                  ratio=0.5, ratio_of=d / "cuts_fbank.jsonl.gz")
    return {"cuts": info.cuts, "hours": round(info.hours, 3)}


def stage_cmvn(d: Path, tpl: Dict) -> Dict:
    from asrkit.features.cmvn import compute_cmvn

    st = compute_cmvn(d / "cuts_fbank.jsonl.gz", d / "out_cmvn.pt", overwrite=True, progress_bar=False)
    return {"frames": int(st.count)}


def stage_extract_plan(d: Path, tpl: Dict) -> Dict:
    from asrkit.features.extract import plan_extraction

    plan = plan_extraction(d / "cuts_audio.jsonl.gz", num_jobs=2, chunk_size=None, min_parallel_seconds=0)
    chunks = cuts = 0
    for chunk in plan.chunks():
        chunks += 1
        cuts += len(chunk)
    return {"jobs": plan.num_jobs, "chunk_size": plan.chunk_size, "chunks": chunks, "cuts": cuts}


def stage_pseudo_plan(d: Path, tpl: Dict) -> Dict:
    import torch

    from asrkit.features.reader import FeatureReader
    from asrkit.nnet.dataset import load_cuts
    from asrkit.pseudo.label import label_cuts, merge_indices

    torch.manual_seed(0)
    teacher = torch.nn.Linear(192, PSEUDO_SENONES)
    t0 = time.perf_counter()
    idx = label_cuts(teacher, load_cuts(d / "cuts_unlab.jsonl.gz"), FeatureReader(tpl["cmvn"]), d / "pseudo",
                     shard_size=SHARD_SIZE, k=PSEUDO_K, tree_checksum="bench", verify_existing=False)
    plan_s = time.perf_counter() - t0
    merged = merge_indices(d / "pseudo")
    return {"shards": idx["num_shards"], "cuts": idx["num_cuts"], "plan_s": round(plan_s, 2),
            "merge_s": round(time.perf_counter() - t0 - plan_s, 2), "labelled": merged["totals"].get("utts")}


def stage_student(d: Path, tpl: Dict) -> Dict:
    import torch

    from asrkit.features.reader import FeatureReader
    from asrkit.nnet.dataset import ChunkDataset, load_cuts, make_loader
    from asrkit.nnet.sampler import BucketingBatchSampler
    from asrkit.nnet.ssl import MACHINE_SEED_OFFSET, open_pseudo_labels, select_labelled
    from asrkit.pseudo.schedule import Schedule, ScheduleConfig

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    reader = FeatureReader(tpl["cmvn"], stack=True)
    chunk, left, min_chunk, max_frames, buckets, seed = 200, 20, 20, 10000, 10, 0
    labels = open_pseudo_labels(d / "pseudo", NUM_SENONES, None)
    lab = ChunkDataset.from_cuts(load_cuts(d / "cuts_lab.jsonl.gz"), reader, chunk, left, 0, min_chunk, "hard",
                                 NUM_SENONES)
    try:  # as SslTrainer builds it, where the library streams the unlabelled manifest
        from asrkit.nnet.ssl import machine_dataset

        cfg = SimpleNamespace(chunk_size=chunk, left_context=left, effective_right_context=0, min_chunk=min_chunk,
                              num_senones=NUM_SENONES)
        mach, _ = machine_dataset(load_cuts(d / "cuts_unlab.jsonl.gz"), labels, reader, cfg)
    except ImportError:  # as SslTrainer built it at a26a943
        kept, _ = select_labelled(load_cuts(d / "cuts_unlab.jsonl.gz"), labels)
        mach = ChunkDataset.from_cuts(kept, reader, chunk, left, 0, min_chunk, "soft", NUM_SENONES, labels=labels)
    _progress(datasets_s=round(time.perf_counter() - t0, 2), labelled_cuts=len(lab.cuts), machine_cuts=len(mach.cuts))
    s_l = BucketingBatchSampler(lab.input_lengths(), max_frames, buckets, shuffle=True, seed=seed)
    s_m = BucketingBatchSampler(mach.input_lengths(), max_frames, buckets, shuffle=True, seed=seed + MACHINE_SEED_OFFSET)
    sch = Schedule(range(s_l.num_batches(0)), range(s_m.num_batches(0)), ScheduleConfig("interleaved", None, 2.0, 1.0))
    lists = {"labelled": (lab, s_l.batches(0)), "machine": (mach, s_m.batches(0))}
    iters, first, n, kinds = {}, None, 0, {"labelled": 0, "machine": 0}
    for item in sch.iter_from(0):
        ds, batches = lists[item.kind]
        if item.kind not in iters:
            iters[item.kind] = iter(make_loader(ds, batches, 0, seed, 0))
        batch = next(iters[item.kind])
        assert batch["features"].shape[-1] == 192
        kinds[item.kind] += 1
        n += 1
        if first is None:
            first = time.perf_counter() - t0
            _progress(first_batch_s=round(first, 2), store=type(lab.cuts).__name__ + "/" + type(mach.cuts).__name__)
        if n == 100:
            break
    return {"first_batch_s": round(first, 2), "batches": n, **kinds, "labelled_batches": sch.n_l,
            "machine_batches": sch.n_m, "store": type(lab.cuts).__name__ + "/" + type(mach.cuts).__name__}


def stage_student_shards(d: Path, tpl: Dict) -> Dict:
    import torch

    from asrkit.features.reader import FeatureReader
    from asrkit.nnet.shard_loader import ShardStream
    from asrkit.nnet.ssl import MACHINE_SEED_OFFSET
    from asrkit.nnet.train_config import TrainConfig
    from asrkit.pseudo.schedule import Schedule, ScheduleConfig

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cfg = TrainConfig(num_senones=NUM_SENONES, loader="shards")  # the defaults: chunks of 200, max_frames 10000
    if os.environ.get("ASRKIT_BENCH_SHUFFLE_BUFFER"):
        cfg.shuffle_buffer = int(os.environ["ASRKIT_BENCH_SHUFFLE_BUFFER"])
    codec = os.environ.get("ASRKIT_BENCH_FEATS_CODEC", "lilcom")
    root = shards_dir(d, codec)
    reader = FeatureReader(tpl["cmvn"], stack=True)
    kw = dict(chunk_size=cfg.chunk_size, left_context=cfg.left_context, right_context=cfg.effective_right_context,
              min_chunk=cfg.min_chunk, max_frames=cfg.max_frames, buffer_size=cfg.shuffle_buffer,
              num_buckets=cfg.num_buckets, num_senones=NUM_SENONES)
    streams = {"labelled": ShardStream(root / "lab", reader, seed=cfg.seed, kind="hard", **kw),
               "machine": ShardStream(root / "mach", reader, seed=cfg.seed + MACHINE_SEED_OFFSET, kind="soft",
                                      **kw)}
    n_l, n_m = streams["labelled"].num_batches(0), streams["machine"].num_batches(0)  # the schedule's epoch sizes
    _progress(planned_s=round(time.perf_counter() - t0, 2), labelled_batches=n_l, machine_batches=n_m)
    sch = Schedule(range(n_l), range(n_m), ScheduleConfig("interleaved", None, 2.0, 1.0))
    iters, first, n, kinds = {}, None, 0, {"labelled": 0, "machine": 0}
    for item in sch.iter_from(0):
        if item.kind not in iters:
            iters[item.kind] = streams[item.kind].batches_from(0, 0)
        batch = next(iters[item.kind])
        assert batch["features"].shape[-1] == 192
        kinds[item.kind] += 1
        n += 1
        if first is None:
            first = time.perf_counter() - t0
            _progress(first_batch_s=round(first, 2))
        if n == 100:
            break
    peak = max(st.bucketer.max_buffered for st in streams.values() if st.bucketer is not None)
    return {"first_batch_s": round(first, 2), "batches": n, **kinds, "labelled_batches": n_l, "machine_batches": n_m,
            "shards": [len(streams["labelled"].set), streams["labelled"].set.num_shards,
                       len(streams["machine"].set), streams["machine"].set.num_shards],
            "max_buffered": peak, "buffer": cfg.shuffle_buffer, "codec": codec,
            "shard_mb": round(sum(e["bytes"] for st in streams.values() for e in st.set.index["shards"]) / 2**20, 1)}


def _progress(**kw) -> None:
    """A milestone on stderr: the parent keeps the last one of a stage it had to cap."""
    print("PROGRESS " + json.dumps(kw), file=sys.stderr, flush=True)


def stage_gmm(d: Path, tpl: Dict) -> Dict:
    import numpy as np

    from asrkit.gmm.accumulate import GmmStats, accumulate
    from asrkit.gmm.data import FeatConfig

    P = 8  # single-Gaussian pdfs; transition id t (1..P) -> pdf t - 1
    rng = np.random.default_rng(0)
    params = []
    for _ in range(P):
        mean, var = rng.normal(size=39), np.full(39, 4.0)
        iv = (1.0 / var)[None]
        gc = np.array([-0.5 * (39 * math.log(2 * math.pi) + np.log(var).sum() + (mean * mean / var).sum())])
        params.append((gc, (mean / var)[None], iv))
    tid2pdf = np.array([-1] + list(range(P)))
    stats = GmmStats.zeros(params, P)
    try:  # the streaming reader, where the library has one
        from asrkit.gmm.data import iter_features

        feats = (f for _, f in iter_features(d / "cuts_mfcc.jsonl.gz", FeatConfig()))
        how = "iter_features"
    except ImportError:
        from asrkit.gmm.data import load_corpus

        feats = load_corpus(d / "cuts_mfcc.jsonl.gz", FeatConfig()).feats.values()
        how = "load_corpus"
    lengths = []

    def alis():
        for f in feats:
            lengths.append(len(f))
            yield f, 1 + (np.arange(len(f)) // 10) % P

    pairs = alis()
    fs, als = _unzip(pairs)
    accumulate(stats, params, tid2pdf, fs, als)
    return {"reader": how, "utts": len(lengths), "frames": int(stats.frames),
            "loglike_per_frame": round(stats.loglike_per_frame, 3)}


def _unzip(pairs):
    """Two iterators over one iterator of pairs, advanced in lockstep (``accumulate`` zips them)."""
    box: List = []

    def first():
        for f, a in pairs:
            box.append(a)
            yield f

    def second():
        while True:
            if not box:
                return
            yield box.pop(0)

    return first(), second()


def stage_report(d: Path, tpl: Dict) -> Dict:
    from asrkit.report import write_report

    text = write_report(d / "exp", d / "data", ["test"], d / "out_RESULTS.md", plot=False)
    if "student_ssl_inter" not in text or "bootstrap" not in text:
        raise RuntimeError("the report has no semi-supervised comparison: the bench's decodes were not read")
    return {"chars": len(text)}


# ------------------------------------------------------------------ the parent
def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_stage(stage: str, d: Path, cap_s: float, max_rss_kb: int, shuffle_buffer: Optional[int] = None,
              feats_codec: str = "lilcom") -> Dict:
    cmd = [sys.executable, __file__, "--child", stage, "--dir", str(d)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    if shuffle_buffer:
        env["ASRKIT_BENCH_SHUFFLE_BUFFER"] = str(shuffle_buffer)
    env["ASRKIT_BENCH_FEATS_CODEC"] = feats_codec
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    capped = None
    # the pipes are drained by threads, so a chatty child never blocks on a full pipe
    bufs = {"out": [], "err": []}
    readers = [threading.Thread(target=lambda f=f, b=b: b.append(f.read()), daemon=True)
               for f, b in ((p.stdout, bufs["out"]), (p.stderr, bufs["err"]))]
    for r in readers:
        r.start()
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)  # wait4, not Popen.poll: it gives the child's rusage
        if pid:
            break
        if capped is None:
            if time.perf_counter() - t0 > cap_s:
                capped = f"time > {cap_s:.0f} s"
            elif _rss_kb(p.pid) > max_rss_kb:
                capped = f"RSS > {max_rss_kb / 2**20:.1f} GiB"
            if capped:
                p.kill()
        time.sleep(0.05)
    p.returncode = status
    wall = time.perf_counter() - t0
    for r in readers:
        r.join()
    out, err = b"".join(bufs["out"]).decode(), b"".join(bufs["err"]).decode()
    row = {"stage": stage, "cuts": int(d.name[1:]), "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
           "wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2), "capped": capped}
    progress = [line[len("PROGRESS "):] for line in err.splitlines() if line.startswith("PROGRESS ")]
    if capped and progress:  # how far it got before the cap
        row["progress"] = {k: v for p in progress for k, v in json.loads(p).items()}
    if capped is None and status != 0:
        row["error"] = err.strip().splitlines()[-1] if err.strip() else f"exit status {status}"
    if capped is None and status == 0:
        try:
            row["info"] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            row["error"] = f"no result line; stderr: {err[-300:]}"
    return row


def fit_exponent(xs: List[float], ys: List[float]) -> Optional[float]:
    """Slope of log y on log x by least squares (None with fewer than two points)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def summarise(rows: List[Dict]) -> Dict[str, Dict]:
    base = {r["cuts"]: r["peak_rss_mb"] for r in rows if r["stage"] == "import" and not r.get("capped")}
    base_t = {r["cuts"]: r["wall_s"] for r in rows if r["stage"] == "import" and not r.get("capped")}
    out = {}
    for st in dict.fromkeys(r["stage"] for r in rows):
        ok = [r for r in rows if r["stage"] == st and not r.get("capped") and not r.get("error")]
        ok.sort(key=lambda r: r["cuts"])
        xs = [r["cuts"] for r in ok]
        above = [max(r["peak_rss_mb"] - base.get(r["cuts"], 0.0), 0.1) for r in ok]
        out[st] = {"rss_exponent": fit_exponent(xs, [r["peak_rss_mb"] for r in ok]),
                   "rss_above_import_exponent": fit_exponent(xs, above) if st != "import" else None,
                   "time_exponent": fit_exponent(xs, [r["wall_s"] for r in ok]),
                   "time_above_import_exponent": fit_exponent(
                       xs, [max(r["wall_s"] - base_t.get(r["cuts"], 0.0), 0.1) for r in ok]) if st != "import" else None,
                   "rss_growth": (ok[-1]["peak_rss_mb"] / ok[0]["peak_rss_mb"]) if len(ok) > 1 else None,
                   "sizes": xs}
    return out


def _fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def print_table(rows: List[Dict], summary: Dict[str, Dict]) -> str:
    base = {r["cuts"]: r["peak_rss_mb"] for r in rows if r["stage"] == "import" and not r.get("capped")}
    lines = ["| stage | cuts | peak RSS MiB | x import | wall s | note |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        ratio = r["peak_rss_mb"] / base[r["cuts"]] if r["cuts"] in base and not r.get("capped") else None
        note = f"capped: {r['capped']}" if r.get("capped") else r.get("error") or json.dumps(r.get("info", {}))
        lines.append(f"| {r['stage']} | {r['cuts']:,} | {r['peak_rss_mb']:.0f} | {_fmt(ratio)} | {r['wall_s']:.1f} | "
                     f"{note[:160]} |")
    lines += ["", "| stage | RSS exponent | RSS-above-import exponent | RSS growth smallest->largest | "
                  "time exponent | time-above-import exponent | sizes fitted |", "|---|---:|---:|---:|---:|---:|---|"]
    for st, s in summary.items():
        lines.append(f"| {st} | {_fmt(s['rss_exponent'])} | {_fmt(s['rss_above_import_exponent'])} | "
                     f"{_fmt(s['rss_growth'])} | {_fmt(s['time_exponent'])} | "
                     f"{_fmt(s.get('time_above_import_exponent'))} | "
                     f"{', '.join(f'{x:,}' for x in s['sizes'])} |")
    text = "\n".join(lines)
    print(text)
    return text


def plot(rows: List[Dict], summary: Dict[str, Dict], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for st in summary:
        ok = sorted((r for r in rows if r["stage"] == st and not r.get("capped") and not r.get("error")),
                    key=lambda r: r["cuts"])
        if not ok:
            continue
        xs = [r["cuts"] for r in ok]
        s = summary[st]
        axes[0].plot(xs, [r["peak_rss_mb"] for r in ok], "o-", label=f"{st} ({_fmt(s['rss_exponent'])})")
        axes[1].plot(xs, [r["wall_s"] for r in ok], "o-", label=f"{st} ({_fmt(s['time_exponent'])})")
    for ax, name in zip(axes, ("peak RSS (MiB)", "wall time (s)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("cuts")
        ax.set_ylabel(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, title="stage (fitted exponent)", title_fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000", help="cuts per set, comma-separated")
    p.add_argument("--stages", default=",".join(STAGES))
    p.add_argument("--work", type=Path, default=Path("/tmp/asrkit_scale"), help="where the sets are built (reused)")
    p.add_argument("--cap-s", type=float, default=600.0, help="time cap per stage run")
    p.add_argument("--max-rss-gb", type=float, default=6.0, help="RSS cap per stage run")
    p.add_argument("--json", type=Path, help="write the rows and fitted exponents here")
    p.add_argument("--plot", type=Path, help="write the log-log plot here")
    p.add_argument("--title", default="asrkit stage drivers against corpus size")
    p.add_argument("--no-build", action="store_true",
                   help="use the sets as they are under --work (a stage whose files are missing reports an error)")
    p.add_argument("--shuffle-buffer", type=int, default=None,
                   help="student_shards: the bucketing buffer in chunks (default: TrainConfig.shuffle_buffer)")
    p.add_argument("--feats-codec", choices=("lilcom", "float32"), default="lilcom",
                   help="student_shards: the training shards' feature codec (lilcom: tshards/, float32: "
                        "tshards_float32/; each written once per set)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--build", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.build:
        d = build_size(args.work, args.build, build_base(args.work / "base"))
        if "student_shards" in args.stages.split(","):
            build_train_shards(d, json.loads((args.work / "base" / "templates.json").read_text()), args.feats_codec)
        return 0
    if args.child:
        import logging

        logging.basicConfig(level=logging.WARNING)
        tpl = json.loads((args.dir.parent / "base" / "templates.json").read_text())
        info = globals()[f"stage_{args.child}"](args.dir, tpl)
        print(json.dumps(info))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s]
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        p.error(f"unknown stages {sorted(unknown)}; known: {STAGES}")
    if "import" not in stages:
        stages.insert(0, "import")  # the bare reference of every ratio
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        d = args.work / f"n{n}"
        # built in a child too: a child's ru_maxrss starts from its parent's RSS at fork (Linux carries
        # the high-water mark across exec), so this process must stay small
        if not args.no_build:
            subprocess.run([sys.executable, __file__, "--build", str(n), "--work", str(args.work),
                            "--stages", ",".join(stages), "--feats-codec", args.feats_codec],
                           check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        print(f"# set of {n:,} cuts ready in {d} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for st in stages:
            row = run_stage(st, d, args.cap_s, int(args.max_rss_gb * 2**20), args.shuffle_buffer, args.feats_codec)
            rows.append(row)
            print(json.dumps(row), flush=True)
        for junk in d.glob("out_*"):
            junk.unlink() if junk.is_file() else shutil.rmtree(junk)
    summary = summarise(rows)
    print()
    table = print_table(rows, summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "cpus": os.cpu_count(), "rows": rows,
                                         "summary": summary, "table": table}, indent=1))
    if args.plot:
        plot(rows, summary, args.plot, args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
