"""Decode any data set with a trained network system, as the recipe decodes its own sets.

Three steps, each a function (``utils/decode_data.sh`` runs the middle one as ``$cmd`` jobs):

1. :func:`prepare` — a Kaldi data dir (``wav.scp``, ``utt2spk``, optional ``text``/``segments``) or a
   lhotse cuts manifest (written back as a data dir first) is validated with the recipes' rules
   (:func:`asrkit.data.manifests.load_kaldi_data_dir` in ``skip`` mode: bad utterances are counted, named
   in ``<out>/validation.txt``, and left out); writes ``<out>/data/cuts.jsonl.gz`` and ``<out>/data/text``.
2. :func:`decode_job` — job ``j`` of ``n`` takes every ``n``-th speaker: features stored as stage 2 stores
   them (:func:`asrkit.features.compute_features`; undecodable audio skipped and counted), the system's
   scores (asrkit.infer.systems: fbank + training CMVN + network + priors, or MFCC + speaker CMN + GMM),
   its graph at the LM weight chosen on dev (or given); writes ``<out>/split<n>/<j>/``.
3. :func:`merge` — the jobs' hypotheses in the data's order in ``<out>/hyp.txt``; with transcripts,
   ``wer_<w>`` (with its bootstrap 95% interval), ``per_utt_<w>`` and ``best_wer`` as the recipe's decode
   dirs; ``summary.json`` with the counts of what was skipped and why.

:func:`decode_data` runs the three in one process. The system is a network's :class:`~asrkit.infer.model_dir.ModelDir`
(an exported model, :func:`~asrkit.infer.model_dir.load_model_dir`, or a recipe's system used in place,
:func:`~asrkit.infer.model_dir.recipe_model`) or a recipe's GMM system
(:class:`~asrkit.infer.systems.GmmSystem`). Outputs equal the recipe's decoding of the same set
(tests/recipes/test_synth_recipe.py).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Dict, Optional, Union

from asrkit.data.validate import DEFAULT_MIN_DURATION, DEFAULT_SAMPLE_RATE
from asrkit.utils.atomic import atomic_write_text, done_marker, is_done, mark_done

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
    # a new preparation invalidates the jobs and the merge of an earlier one (other data, other cuts)
    for stale in out.glob("split*"):
        shutil.rmtree(stale)
    done_marker(out).unlink(missing_ok=True)
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


def _share(cuts, job: int, num_jobs: int):
    """Job ``job``'s cuts: whole speakers (a GMM normalises over a speaker's utterances), dealt in turn
    in the order of their first utterance, as Kaldi's split_data.sh --per-spk."""
    from lhotse import CutSet

    order: Dict[str, int] = {}
    for c in cuts:
        order.setdefault(c.supervisions[0].speaker if c.supervisions else c.id, len(order))
    return CutSet.from_cuts(c for c in cuts
                            if order[c.supervisions[0].speaker if c.supervisions else c.id] % num_jobs == job - 1)


def as_system(model, lm_weight: Optional[float] = None, chunk: Optional[int] = None):
    """A network's ModelDir becomes a NnetSystem, a GMM's a GmmSystem; a GmmSystem is used as it is."""
    from asrkit.infer.systems import GmmSystem, NnetSystem

    if not isinstance(model, GmmSystem) and model.kind == "gmm":  # an exported GMM: final.mdl and graph/ inside
        model = GmmSystem(model.path, model.lm_weight, dict(model.decode_options))
    if isinstance(model, GmmSystem):
        if lm_weight is not None:
            model = GmmSystem(model.system_dir, float(lm_weight), model.options)
        return model
    return NnetSystem(model, lm_weight=lm_weight, chunk=chunk)


def decode_job(model, out_dir: PathLike, job: int = 1, num_jobs: int = 1, lm_weight: Optional[float] = None,
               chunk: Optional[int] = None, nj: int = 1) -> Path:
    """Features, acoustic scores and search for job ``job`` (1-based) of ``num_jobs``; ``nj`` decoder
    processes. ``model``: a ModelDir (network) or a :class:`~asrkit.infer.systems.GmmSystem`."""
    from lhotse import CutSet

    from asrkit.decode.decoder import decode_set, write_decode_dir

    out = Path(out_dir)
    if not 1 <= job <= num_jobs:
        raise ValueError(f"job {job} of {num_jobs}")
    jdir = _job_dir(out, job, num_jobs)
    if is_done(jdir):
        log.info("%s is done", jdir)
        return jdir
    mine = _share(CutSet.from_file(_cuts_path(out)).to_eager(), job, num_jobs)
    jdir.mkdir(parents=True, exist_ok=True)
    system = as_system(model, lm_weight, chunk)
    t0 = time.perf_counter()
    scores, skipped, audio = system.scores(mine, jdir / "feats")
    results, summary = decode_set(scores, system.graph, system.config, nj=nj)
    write_decode_dir(results, summary, jdir)
    atomic_write_text(jdir / "job.json", json.dumps({
        "job": job, "num_jobs": num_jobs, "cuts": len(mine), "decoded": len(results),
        "skipped": [[cid, "unreadable_audio", why] for cid, why in skipped], "lm_weight": system.lm_weight,
        "drop_noise_in_scoring": system.drop_noise_in_scoring,
        "seconds": round(time.perf_counter() - t0, 3), "audio_seconds": round(audio, 3)}, indent=1) + "\n")
    shutil.rmtree(jdir / "feats", ignore_errors=True)  # features are a means, not an output
    mark_done(jdir)
    return jdir


def merge(out_dir: PathLike, num_jobs: int = 1, bootstrap: bool = True) -> Dict:
    """Hypotheses of every job in the data's order, WER when there are transcripts, summary.json."""
    from lhotse import CutSet

    from asrkit.decode.score import (NOISE_TOKENS, compute_wer, make_normalizer, read_text, write_best_wer,
                                     write_wer_files)

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
        # scored as the recipe scores this kind of system (see asrkit.infer.systems)
        norm = make_normalizer(drop=NOISE_TOKENS if jobs[0].get("drop_noise_in_scoring", True) else ())
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


def decode_data(model, data: PathLike, out_dir: PathLike, nj: int = 1, lm_weight: Optional[float] = None,
                chunk: Optional[int] = None, audio_root: Optional[PathLike] = None,
                min_duration: float = DEFAULT_MIN_DURATION) -> Dict:
    """:func:`prepare`, one :func:`decode_job` (``nj`` decoder processes), :func:`merge`."""
    prepare(data, out_dir, audio_root, min_duration)
    decode_job(model, out_dir, 1, 1, lm_weight=lm_weight, chunk=chunk, nj=nj)
    return merge(out_dir, 1)
