"""Decode any data set with a trained network system, as the recipe decodes its own sets.

Three steps, each a function (``utils/decode_data.sh`` runs the middle one as ``$cmd`` jobs):

1. :func:`prepare` — a Kaldi data dir (``wav.scp``, ``utt2spk``, optional ``text``/``segments``) or a
   lhotse cuts manifest (written back as a data dir first) is validated with the recipes' rules
   (:func:`asrkit.data.manifests.load_kaldi_data_dir` in ``skip`` mode: bad utterances are counted, named
   in ``<out>/validation.txt``, and left out); writes ``<out>/data/cuts.jsonl.gz`` and ``<out>/data/text``.
2. :func:`decode_job` — job ``j`` of ``n`` takes every ``n``-th cut: 64-bin fbank stored as stage 2 stores
   it (:func:`asrkit.features.compute_features`; unreadable audio skipped and counted), the training CMVN,
   the network (a student chunk by chunk as the recipe's streaming decode, the teacher whole), log priors,
   the senone HCLG at the LM weight chosen on dev (or given); writes ``<out>/split<n>/<j>/``.
3. :func:`merge` — the jobs' hypotheses in the data's order in ``<out>/hyp.txt``; with transcripts,
   ``wer_<w>`` (with its bootstrap 95% interval), ``per_utt_<w>`` and ``best_wer`` as the recipe's decode
   dirs; ``summary.json`` with the counts of what was skipped and why.

:func:`decode_data` runs the three in one process. The system is a :class:`~asrkit.infer.model_dir.ModelDir`:
an exported model (:func:`~asrkit.infer.model_dir.load_model_dir`) or a recipe's system used in place
(:func:`~asrkit.infer.model_dir.recipe_model`). Outputs equal the recipe's decoding of the same set
(tests/recipes/test_synth_recipe.py).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from asrkit.data.validate import DEFAULT_MIN_DURATION, DEFAULT_SAMPLE_RATE
from asrkit.infer.model_dir import ModelDir
from asrkit.utils.atomic import atomic_write_text, is_done, mark_done

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


def _cuts_path(out: Path) -> Path:
    return out / "data" / "cuts.jsonl.gz"


def prepare(data: PathLike, out_dir: PathLike, audio_root: Optional[PathLike] = None,
            min_duration: float = DEFAULT_MIN_DURATION, sample_rate: Optional[int] = DEFAULT_SAMPLE_RATE) -> Dict:
    """Validate ``data`` (Kaldi dir or cuts manifest) into ``<out>/data``; returns the counts."""
    from asrkit.data.manifests import export_kaldi_dir, load_kaldi_data_dir

    out = Path(out_dir)
    data = Path(data)
    (out / "data").mkdir(parents=True, exist_ok=True)
    if data.is_file():  # a lhotse manifest: through a data dir, so that the same validation applies
        from lhotse import CutSet

        kaldi_dir = out / "data" / "kaldi"
        export_kaldi_dir(CutSet.from_file(data), kaldi_dir)
        data = kaldi_dir
    elif not (data / "wav.scp").is_file():
        raise FileNotFoundError(f"{data}: neither a Kaldi data dir (no wav.scp) nor a cuts manifest")
    labelled = (data / "text").is_file()
    prepared = load_kaldi_data_dir(data, audio_root, set_name=data.name, labelled=labelled, on_error="skip",
                                   min_duration=min_duration, sample_rate=sample_rate,
                                   report_path=out / "validation.txt", progress=False)
    if len(prepared.cuts) == 0:
        raise ValueError(f"{data}: no utterance passed validation (see {out / 'validation.txt'})")
    prepared.cuts.to_file(_cuts_path(out))
    if labelled:
        atomic_write_text(out / "data" / "text", "".join(f"{c.id} {c.supervisions[0].text}\n" for c in prepared.cuts))
    counts = {"total": prepared.report.num_total, "kept": len(prepared.cuts), "labelled": labelled,
              "skipped": prepared.report.counts()}
    atomic_write_text(out / "data" / "prepare.json", json.dumps(counts, indent=1) + "\n")
    log.info("%s: %d utterances, %d kept, skipped %s", data, counts["total"], counts["kept"], counts["skipped"] or 0)
    return counts


def _job_dir(out: Path, job: int, num_jobs: int) -> Path:
    return out / f"split{num_jobs}" / str(job)


def decode_job(model: ModelDir, out_dir: PathLike, job: int = 1, num_jobs: int = 1, lm_weight: Optional[float] = None,
               chunk: Optional[int] = None, nj: int = 1) -> Path:
    """Features, network and search for job ``job`` (1-based) of ``num_jobs``; ``nj`` decoder processes."""
    from lhotse import CutSet

    from asrkit.decode.decoder import decode_set, write_decode_dir
    from asrkit.features.extract import compute_features
    from asrkit.features.reader import FeatureReader
    from asrkit.infer.recognizer import Recognizer
    from asrkit.nnet.infer import log_posteriors

    out = Path(out_dir)
    if not 1 <= job <= num_jobs:
        raise ValueError(f"job {job} of {num_jobs}")
    jdir = _job_dir(out, job, num_jobs)
    if is_done(jdir):
        log.info("%s is done", jdir)
        return jdir
    cuts = CutSet.from_file(_cuts_path(out)).to_eager()
    mine = CutSet.from_cuts(c for i, c in enumerate(cuts) if i % num_jobs == job - 1)
    jdir.mkdir(parents=True, exist_ok=True)
    skipped: List = []
    if len(mine):
        fsum = compute_features(mine, jdir / "fbank", "data", kind="fbank", num_jobs=1, overwrite=True,
                                progress_bar=False, skip_unreadable=True)
        skipped = [[cid, "unreadable_audio", why] for cid, why in fsum.skipped_cuts]
        feats_cuts = CutSet.from_file(fsum.manifest)
    else:
        feats_cuts = []
    rec = Recognizer(model, lm_weight=lm_weight, chunk=chunk)
    reader = FeatureReader(rec.cmvn)
    t0 = time.perf_counter()

    def scores():
        for cut in feats_cuts:  # nnet_forward's arithmetic: float32 log-posteriors minus log priors
            lp = log_posteriors(rec.network, reader(cut), streaming=rec.streaming_network, chunk=rec.chunk)
            yield cut.id, (lp - rec.log_priors[None, :]).astype(np.float32)

    results, summary = decode_set(scores(), rec.graph, rec.config, nj=nj)
    write_decode_dir(results, summary, jdir)
    atomic_write_text(jdir / "job.json", json.dumps({
        "job": job, "num_jobs": num_jobs, "cuts": len(mine), "decoded": len(results), "skipped": skipped,
        "lm_weight": rec.lm_weight, "seconds": round(time.perf_counter() - t0, 3),
        "audio_seconds": round(sum(c.duration for c in feats_cuts), 3)}, indent=1) + "\n")
    shutil.rmtree(jdir / "fbank", ignore_errors=True)  # features are a means, not an output
    mark_done(jdir)
    return jdir


def merge(out_dir: PathLike, num_jobs: int = 1, bootstrap: bool = True) -> Dict:
    """Hypotheses of every job in the data's order, WER when there are transcripts, summary.json."""
    from lhotse import CutSet

    from asrkit.decode.score import NOISE_TOKENS, compute_wer, make_normalizer, read_text, write_best_wer, write_wer_files

    out = Path(out_dir)
    hyps: Dict[str, str] = {}
    jobs = []
    for j in range(1, num_jobs + 1):
        jdir = _job_dir(out, j, num_jobs)
        if not is_done(jdir):
            raise FileNotFoundError(f"job {j} of {num_jobs} did not finish: no {jdir} done marker (see its log)")
        for line in (jdir / "hyp.txt").read_text(encoding="utf-8").splitlines():
            utt, _, words = line.partition(" ")
            hyps[utt] = words
        jobs.append(json.loads((jdir / "job.json").read_text()))
    order = [c.id for c in CutSet.from_file(_cuts_path(out))]
    atomic_write_text(out / "hyp.txt", "".join(f"{u} {hyps[u]}".rstrip() + "\n" for u in order if u in hyps))
    prep = json.loads((out / "data" / "prepare.json").read_text())
    skipped = Counter(prep["skipped"])
    skipped.update(r for job in jobs for _, r, _ in job["skipped"])
    lm_weight = jobs[0]["lm_weight"]
    seconds = sum(j["seconds"] for j in jobs)
    audio = sum(j["audio_seconds"] for j in jobs)
    summary = {"utterances": prep["total"], "decoded": len(hyps), "skipped": dict(sorted(skipped.items())),
               "skipped_at_decoding": [s for job in jobs for s in job["skipped"]], "lm_weight": lm_weight,
               "num_jobs": num_jobs, "compute_seconds": round(seconds, 3), "audio_seconds": round(audio, 3),
               "rtf": round(seconds / audio, 5) if audio else None}
    if prep["labelled"]:
        refs = read_text(out / "data" / "text")
        # the recipe scores the set as validated (what its manifests hold); an utterance skipped here at
        # decoding counts as all deletions, as Kaldi's scoring does with a missing hypothesis
        norm = make_normalizer(drop=NOISE_TOKENS)  # asrkit.bin.decode's scoring
        res = compute_wer(refs, {u: h.split() for u, h in hyps.items()}, norm, bootstrap=bootstrap)
        write_wer_files(res, out, lm_weight)
        write_best_wer({lm_weight: res}, out)
        summary["wer"] = res.wer_line()
        log.info("%s", res.wer_line())
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    for s in summary["skipped_at_decoding"]:
        log.warning("skipped at decoding: %s (%s): %s", *s)
    log.info("decoded %d of %d utterances (skipped: %s) at LM weight %s; RTF %s", len(hyps), prep["total"],
             summary["skipped"] or "none", lm_weight, summary["rtf"])
    mark_done(out)
    return summary


def decode_data(model: ModelDir, data: PathLike, out_dir: PathLike, nj: int = 1, lm_weight: Optional[float] = None,
                chunk: Optional[int] = None, audio_root: Optional[PathLike] = None,
                min_duration: float = DEFAULT_MIN_DURATION) -> Dict:
    """:func:`prepare`, one :func:`decode_job` (``nj`` decoder processes), :func:`merge`."""
    prepare(data, out_dir, audio_root, min_duration)
    decode_job(model, out_dir, 1, 1, lm_weight=lm_weight, chunk=chunk, nj=nj)
    return merge(out_dir, 1)
