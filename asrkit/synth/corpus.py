"""The synthetic corpus: configuration, planning, parallel jobs, resumable writing of the Stage 0 layout.

    corpus/audio/<set>/<spk>/<utt>.flac        16 kHz mono FLAC
    corpus/data/<set>/{wav.scp,text,utt2spk,spk2utt,utt2cond,phones.ctm}   (train_unsup: no text)
    corpus/oracle/train_unsup/text
    corpus/lexicon.txt  corpus/speakers.tsv  corpus/corpus.json

Work is cut into jobs of a fixed number of utterances (independent of ``nj``); each job writes its FLAC
files and then a JSON of its records under ``corpus/.work/`` with a done marker, so a killed run skips the
finished jobs when it is run again. The data dirs, lexicon and corpus.json are written from the job
records at the end, each atomically. Same seed and configuration → the same bytes whatever ``nj``.

The lexicon is built from ``train_sup`` and the LM text only (:func:`build_lexicon`): words that only the
dev / test transcripts hold are out of vocabulary, as in a real corpus, and corpus.json counts them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing as mp
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from asrkit.synth.speakers import (DEFAULT_VARIANTS, DEFAULT_VOICES, SPLITS, Speaker, make_speakers)
from asrkit.synth.utterance import CONDITIONS, COND, AcousticConfig, UttSpec, sentence_for, utt_rng
from asrkit.utils.atomic import atomic_path, atomic_write_text, is_done, mark_done

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
# 2: the lexicon holds train_sup's spoken pronunciations and the LM text's words only (1: every split's).
# A finished corpus of an older lexicon version is brought up to date from its job records (no audio redone).
LEXICON_VERSION = 2
WORK_DIR = ".work"


@dataclass
class SynthConfig:
    seed: int = 0
    # hours of audio per split (planned from an estimate of each sentence's duration)
    hours: Dict[str, float] = field(default_factory=lambda: {
        "train_sup": 0.4, "train_unsup": 1.6, "dev": 1 / 6, "test_clean": 1 / 6, "test_noisy": 1 / 6})
    speakers: Dict[str, int] = field(default_factory=lambda: {
        "train_sup": 24, "train_unsup": 72, "dev": 8, "test_clean": 8, "test_noisy": 8})
    vocab_size: int = 1200
    zipf: float = 1.0
    # condition mixtures (probabilities) per split
    conditions: Dict[str, Dict[str, float]] = field(default_factory=lambda: {
        "train_sup": {"clean": 0.25, "noisy": 0.25, "reverb": 0.25, "noisy_reverb": 0.25},
        "train_unsup": {"clean": 0.25, "noisy": 0.25, "reverb": 0.25, "noisy_reverb": 0.25},
        "dev": {"clean": 0.25, "noisy": 0.25, "reverb": 0.25, "noisy_reverb": 0.25},
        "test_clean": {"clean": 1.0},
        "test_noisy": {"noisy_reverb": 1.0}})
    snr_range: Tuple[float, float] = (0.0, 20.0)
    rt60_range: Tuple[float, float] = (0.2, 0.8)
    pitch_spread: float = 20.0
    rate_spread: float = 0.15
    base_rate: int = 165
    voices: Tuple[str, ...] = DEFAULT_VOICES
    variants: Tuple[str, ...] = DEFAULT_VARIANTS
    num_babble_speakers: int = 12
    babble_clips_per_speaker: int = 3
    utts_per_job: int = 40
    sample_rate: int = 16000
    # text-only sentences for the language model (lm_text.txt), drawn apart from every split's sentences
    lm_text_sentences: int = 20000

    @classmethod
    def tiny(cls, seed: int = 0, minutes: float = 0.5, **kw) -> "SynthConfig":
        """A configuration for tests: ``minutes`` of audio and 2 speakers per split."""
        h = minutes / 60
        base = dict(seed=seed, hours={s: h for s in SPLITS}, speakers={s: 2 for s in SPLITS},
                    num_babble_speakers=2, babble_clips_per_speaker=2, utts_per_job=8,
                    lm_text_sentences=500)
        base.update(kw)
        return cls(**base)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["snr_range"], d["rt60_range"] = list(self.snr_range), list(self.rt60_range)
        d["voices"], d["variants"] = list(self.voices), list(self.variants)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SynthConfig":
        d = dict(d)
        for k in ("snr_range", "rt60_range", "voices", "variants"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def fingerprint(self) -> str:
        blob = json.dumps({"v": GENERATOR_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def acoustic(self) -> AcousticConfig:
        return AcousticConfig(sample_rate=self.sample_rate, snr_range=tuple(self.snr_range),
                              rt60_range=tuple(self.rt60_range))

    def validate(self) -> None:
        for name, table in (("hours", self.hours), ("speakers", self.speakers), ("conditions", self.conditions)):
            unknown = set(table) - set(SPLITS)
            if unknown:
                raise ValueError(f"{name}: unknown split(s) {sorted(unknown)}; expected {SPLITS}")
        for s in SPLITS:
            if self.hours.get(s, 0) > 0 and self.speakers.get(s, 0) <= 0:
                raise ValueError(f"split {s} has {self.hours[s]} h but no speakers")
            for c in self.conditions.get(s, {}):
                if c not in CONDITIONS:
                    raise ValueError(f"conditions[{s}]: unknown condition {c!r}; expected {CONDITIONS}")
        lo, hi = self.snr_range
        if lo > hi or self.rt60_range[0] > self.rt60_range[1] or self.rt60_range[0] <= 0:
            raise ValueError(f"bad ranges: snr {self.snr_range}, rt60 {self.rt60_range}")
        if self.vocab_size < 50:
            raise ValueError(f"vocab_size {self.vocab_size} is too small (at least 50)")


# -- planning -------------------------------------------------------------------------------------
def estimate_seconds(words: Sequence[str], rate: int) -> float:
    """espeak's duration of a sentence from its letters and the speaking rate (fitted on espeak 1.51),
    plus the 0.5 s of silence added on average around it."""
    chars = sum(len(w) + 1 for w in words)
    return 8.7 * chars / rate + 0.12 + 0.5


def plan(cfg: SynthConfig, generator=None) -> Tuple[Dict[str, List[UttSpec]], Dict[str, List[Speaker]], List[Speaker]]:
    """The utterances of every split (speaker round-robin, condition per utterance), deterministic."""
    from asrkit.synth.text import SentenceGenerator

    gen = generator or SentenceGenerator(cfg.vocab_size, cfg.zipf)
    counts = {s: cfg.speakers.get(s, 0) for s in SPLITS if cfg.hours.get(s, 0) > 0}
    speakers, babble = make_speakers(counts, cfg.seed, cfg.voices, cfg.variants, cfg.pitch_spread,
                                     cfg.rate_spread, cfg.base_rate, cfg.num_babble_speakers)
    specs: Dict[str, List[UttSpec]] = {}
    for split, spks in speakers.items():
        target = cfg.hours[split] * 3600.0
        mix = cfg.conditions.get(split) or {"clean": 1.0}
        names = sorted(mix)
        probs = np.array([mix[c] for c in names], dtype=np.float64)
        probs /= probs.sum()
        out, total, i = [], 0.0, 0
        while total < target or i < len(spks):  # every speaker says at least one utterance
            spk = spks[i % len(spks)]
            cond = names[int(utt_rng(cfg.seed, split, i, COND).choice(len(names), p=probs))]
            out.append(UttSpec(split, i, f"{spk.spk}-{i:05d}", spk, cond))
            total += estimate_seconds(sentence_for(gen, cfg.seed, split, i), spk.rate)
            i += 1
        specs[split] = out
    return specs, speakers, babble


# -- workers --------------------------------------------------------------------------------------
_STATE: Dict[str, object] = {}


def _worker_state(cfg_dict: dict, work: str):
    key = json.dumps(cfg_dict, sort_keys=True) + work
    if _STATE.get("key") != key:
        from asrkit.synth.espeak import get_espeak
        from asrkit.synth.text import SentenceGenerator

        cfg = SynthConfig.from_dict(cfg_dict)
        es = get_espeak()
        es.preload("en")  # the same in every worker: identical state to fork from
        _STATE.clear()
        _STATE.update(key=key, cfg=cfg, es=es, gen=SentenceGenerator(cfg.vocab_size, cfg.zipf),
                      bank=None)
    return _STATE


def _babble_job(cfg_dict: dict, work: str, speakers: List[Speaker]) -> str:
    from asrkit.synth.utterance import make_babble_clip

    st = _worker_state(cfg_dict, work)
    cfg: SynthConfig = st["cfg"]
    clips = []
    for i in range(len(speakers) * cfg.babble_clips_per_speaker):
        clips.append(make_babble_clip(st["es"], st["gen"], cfg.seed, i, speakers[i % len(speakers)],
                                      cfg.sample_rate).astype(np.float32))
    path = Path(work) / "babble.npz"
    with atomic_path(path) as tmp:
        np.savez(tmp, *clips)
    mark_done(path)
    return str(path)


def _synth_job(args) -> Tuple[str, int, float, float]:
    """Make the utterances of one job; returns (record file, count, audio seconds, cpu seconds)."""
    from asrkit.synth.utterance import render

    cfg_dict, work, root, split, job, specs = args
    t0 = time.process_time()
    st = _worker_state(cfg_dict, work)
    cfg: SynthConfig = st["cfg"]
    if st["bank"] is None:
        bpath = Path(work) / "babble.npz"
        with np.load(bpath) as z:
            st["bank"] = [z[k] for k in sorted(z.files, key=lambda s: int(s.split("_")[1]))]
    acfg = cfg.acoustic()
    records = []
    for spec in specs:
        path = Path(root) / "audio" / split / spec.speaker.spk / f"{spec.utt}.flac"
        records.append(render(st["es"], st["gen"], spec, cfg.seed, acfg, st["bank"], path))
    out = Path(work) / "jobs" / split / f"job{job:04d}.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(records, separators=(",", ":")))
    mark_done(out)
    secs = sum(r["num_samples"] for r in records) / cfg.sample_rate
    return str(out), len(records), secs, time.process_time() - t0


def _check_voices(speakers: Sequence[Speaker]) -> None:
    """Fail early, in the main process, on a missing library or voice."""
    from asrkit.synth.espeak import get_espeak

    es = get_espeak()
    for sp in speakers:
        es.check_voice(sp.voice, sp.variant)


# -- writing --------------------------------------------------------------------------------------
def _ctm_line(utt: str, start: int, num: int, phone: str, rate: int) -> str:
    """Times rounded to 10 us (a 16 kHz sample is 62.5 us): start and end are rounded, the duration is
    their difference, so rounded phones never overlap and never lose their duration."""
    st = round(start * 100000 / rate)
    en = round((start + num) * 100000 / rate)
    return f"{utt} 1 {st / 100000:.5f} {(en - st) / 100000:.5f} {phone}\n"


def _write_data_dir(root: Path, split: str, records: List[dict], rate: int, with_text: bool) -> None:
    d = root / "data" / split
    recs = sorted(records, key=lambda r: r["utt"])
    with atomic_path(d) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "wav.scp").write_text("".join(
            f"{r['utt']} audio/{split}/{r['spk']}/{r['utt']}.flac\n" for r in recs))
        if with_text:
            (tmp / "text").write_text("".join(f"{r['utt']} {' '.join(r['words'])}\n" for r in recs))
        (tmp / "utt2spk").write_text("".join(f"{r['utt']} {r['spk']}\n" for r in recs))
        spk2utt: Dict[str, List[str]] = defaultdict(list)
        for r in recs:
            spk2utt[r["spk"]].append(r["utt"])
        (tmp / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in sorted(spk2utt.items())))
        (tmp / "utt2cond").write_text("".join(f"{r['utt']} {r['condition']}\n" for r in recs))
        (tmp / "utt2dur").write_text("".join(f"{r['utt']} {r['num_samples'] / rate:.4f}\n" for r in recs))
        (tmp / "phones.ctm").write_text("".join(
            _ctm_line(r["utt"], s, n, ph, rate) for r in recs for s, n, ph in r["phones"]))
    mark_done(d)


def _write_lm_text(root: Path, cfg: SynthConfig, gen) -> List[str]:
    """Text-only LM data, as a real corpus ships (LibriSpeech's LM corpus): same grammar, own seeds.
    Returns its lines."""
    from asrkit.synth.utterance import sentence_for

    lines = [" ".join(w.upper() for w in sentence_for(gen, cfg.seed, "lm_text", i)) + "\n"
             for i in range(cfg.lm_text_sentences)]
    atomic_write_text(root / "lm_text.txt", "".join(lines))
    return lines


def _isolated_prons(es, words: Sequence[str], voices: Sequence[str]) -> Dict[str, List[str]]:
    """``{word: [kaldi-phone pronunciation, ...]}``: espeak's isolated pronunciation of each (upper-case)
    word with each voice (run in a forked child: the caller's espeak state stays as it was)."""
    from asrkit.synth.phones import is_pause, to_kaldi_phone

    out: Dict[str, List[str]] = {w: [] for w in words}
    for voice in voices:
        es.set_voice(voice, None, 165, 50, 50)
        for w in words:
            phones = [to_kaldi_phone(m) for m in es.isolated_phonemes(w.lower()) if not is_pause(m)]
            pron = " ".join(phones)
            if pron and pron not in out[w]:
                out[w].append(pron)
    return out


def build_lexicon(records: Dict[str, List[dict]], speakers: Dict[str, List[Speaker]],
                  lm_lines: Sequence[str]) -> Tuple[Dict[str, set], dict]:
    """The corpus lexicon, from the labelled training set and the LM text only, as a real corpus's
    lexicon is made before its test data is seen: every pronunciation spoken in ``train_sup`` (its
    records' phone segmentation), and for the LM text's other words espeak's isolated pronunciation with
    each voice of the ``train_sup`` speakers, kept only when all its phones occur in ``train_sup`` (a
    phone no training audio has could not be modelled). Words only the dev/test transcripts (or the
    unlabelled set's hidden text) hold are out of the lexicon: OOVs, as in any real corpus.
    Returns ``({word: {pron}}, stats)``."""
    from asrkit.synth.espeak import get_espeak, run_forked

    prons: Dict[str, set] = defaultdict(set)
    for r in records.get("train_sup", []):
        for w, p in r["prons"]:
            prons[w].add(p)
    phones = {ph for ps in prons.values() for p in ps for ph in p.split()}
    lm_words = sorted({w for line in lm_lines for w in line.split()} - set(prons))
    voices = sorted({sp.voice for sp in speakers.get("train_sup", [])})
    iso = run_forked(get_espeak(), _isolated_prons, lm_words, voices) if lm_words and voices else {}
    no_pron = []
    for w in lm_words:
        ok = [p for p in iso.get(w, []) if set(p.split()) <= phones]
        if ok:
            prons[w].update(ok)
        else:
            no_pron.append(w)
    if no_pron:
        log.info("lexicon: %d LM-text words left out (no pronunciation within the train_sup phones): %s",
                 len(no_pron), " ".join(no_pron[:10]) + (" ..." if len(no_pron) > 10 else ""))
    oov = {}
    for split, recs in records.items():
        if split == "train_sup":
            continue
        tokens = [w for r in recs for w in r["words"]]
        oov[split] = {"tokens": len(tokens), "oov_tokens": sum(w not in prons for w in tokens),
                      "oov_types": len({w for w in tokens if w not in prons})}
    spoken = {w for r in records.get("train_sup", []) for w, _ in r["prons"]}
    stats = {"words": len(prons), "from_train_sup": len(spoken),
             "from_lm_text": len(lm_words) - len(no_pron), "lm_text_words_without_pron": len(no_pron),
             "oov": oov}
    return prons, stats


def _finish(root: Path, cfg: SynthConfig, records: Dict[str, List[dict]], speakers: Dict[str, List[Speaker]],
            babble: List[Speaker], stats: dict, gen) -> dict:
    rate = cfg.sample_rate
    lm_lines = _write_lm_text(root, cfg, gen)
    for split, recs in records.items():
        _write_data_dir(root, split, recs, rate, with_text=(split != "train_unsup"))
    if "train_unsup" in records:
        o = root / "oracle" / "train_unsup"
        with atomic_path(o) as tmp:
            tmp.mkdir(parents=True)
            (tmp / "text").write_text("".join(f"{r['utt']} {' '.join(r['words'])}\n"
                                              for r in sorted(records["train_unsup"], key=lambda r: r["utt"])))
        mark_done(o)
    # lexicon: from train_sup and the LM text only (never the dev / test transcripts)
    prons, lex_stats = build_lexicon(records, speakers, lm_lines)
    lex_lines = [f"{w} {p}\n" for w in sorted(prons) for p in sorted(prons[w])]
    atomic_write_text(root / "lexicon.txt", "".join(lex_lines))
    mark_done(root / "lexicon.txt")
    spk_lines = ["spk\tset\tvoice\tvariant\tpitch\tspeed\n"]
    for split in SPLITS:
        for sp in speakers.get(split, []):
            spk_lines.append(sp.tsv() + "\n")
    atomic_write_text(root / "speakers.tsv", "".join(spk_lines))
    mark_done(root / "speakers.tsv")
    phones = sorted({ph for recs in records.values() for r in recs for _, _, ph in r["phones"]})
    summary = {}
    for split, recs in records.items():
        summary[split] = {
            "utterances": len(recs),
            "speakers": len({r["spk"] for r in recs}),
            "hours": round(sum(r["num_samples"] for r in recs) / rate / 3600, 4),
            "words": sum(len(r["words"]) for r in recs),
            "conditions": dict(sorted(Counter(r["condition"] for r in recs).items())),
            "resynthesised_sentences": sum(r["attempts"] - 1 for r in recs),
        }
    info = {
        "generator": "asrkit.synth", "generator_version": GENERATOR_VERSION,
        "config": cfg.to_dict(), "fingerprint": cfg.fingerprint(),
        "splits": summary,
        "vocabulary": {"words_used": len(prons), "pronunciations": len(lex_lines),
                       "generator_vocab": stats.get("generator_vocab")},
        "lexicon_version": LEXICON_VERSION, "lexicon": lex_stats,
        "phones": phones,
        "speakers": {s: [sp.to_dict() for sp in sps] for s, sps in speakers.items()},
        "babble_speakers": [sp.to_dict() for sp in babble],
        "sample_rate": rate,
        "espeak_version": stats.get("espeak_version"),
    }
    atomic_write_text(root / "corpus.json", json.dumps(info, indent=1) + "\n")
    mark_done(root / "corpus.json")
    return info


def make_corpus(root, cfg: Optional[SynthConfig] = None, nj: int = 1, progress: bool = True) -> dict:
    """Generate (or finish generating) the corpus under ``root``; returns the corpus.json content.

    Re-running with the same configuration skips finished jobs; a finished corpus is left as it is.
    A different configuration in a non-empty ``root`` is refused (delete it or pick another folder).
    """
    from asrkit.synth.text import SentenceGenerator

    cfg = cfg or SynthConfig()
    cfg.validate()
    root = Path(root)
    work = root / WORK_DIR
    fp = cfg.fingerprint()
    if is_done(root / "corpus.json") and is_done(root):
        old = json.loads((root / "corpus.json").read_text())
        if old.get("fingerprint") == fp and old.get("lexicon_version") == LEXICON_VERSION:
            log.info("corpus %s is complete (fingerprint %s): nothing to do", root, fp)
            return old
        if old.get("fingerprint") != fp:
            raise RuntimeError(f"{root} holds a corpus made with another configuration "
                           f"(fingerprint {old.get('fingerprint')} != {fp}); remove it or choose another folder")
        log.info("corpus %s: lexicon version %s -> %d: rewriting the lexicon and corpus.json from the job records",
                 root, old.get("lexicon_version", 1), LEXICON_VERSION)
    work.mkdir(parents=True, exist_ok=True)
    cfg_file = work / "config.json"
    if cfg_file.exists():
        old = json.loads(cfg_file.read_text())
        if old.get("fingerprint") != fp:
            raise RuntimeError(f"{root} holds unfinished work of another configuration ({cfg_file}: "
                               f"{old.get('fingerprint')} != {fp}); remove {root} or choose another folder")
    else:
        atomic_write_text(cfg_file, json.dumps({"fingerprint": fp, "config": cfg.to_dict()}, indent=1))

    t_start, cpu_start = time.time(), time.process_time()
    gen = SentenceGenerator(cfg.vocab_size, cfg.zipf)
    specs, speakers, babble = plan(cfg, gen)
    all_spk = [sp for sps in speakers.values() for sp in sps] + babble
    _check_voices(all_spk)
    from asrkit.synth.espeak import get_espeak
    espeak_version = get_espeak().version

    cfg_dict = cfg.to_dict()
    jobs = []
    for split, lst in specs.items():
        for j in range(0, len(lst), cfg.utts_per_job):
            jobs.append((cfg_dict, str(work), str(root), split, j // cfg.utts_per_job, lst[j:j + cfg.utts_per_job]))
    todo = [a for a in jobs if not is_done(work / "jobs" / a[3] / f"job{a[4]:04d}.json")]
    n_utts = sum(len(a[5]) for a in todo)
    log.info("synthetic corpus %s: %d utterances in %d jobs (%d to do, %d utterances), nj=%d",
             root, sum(len(v) for v in specs.values()), len(jobs), len(todo), n_utts, nj)

    audio_secs, job_cpu = 0.0, 0.0
    need_babble = not is_done(work / "babble.npz")
    if todo or need_babble:
        env_keys = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        saved = {k: os.environ.get(k) for k in env_keys}
        os.environ.update({k: "1" for k in env_keys})  # one BLAS thread per worker: nj processes share the CPUs
        try:
            ctx = mp.get_context("spawn")
            with ctx.Pool(max(1, nj)) as pool:
                if need_babble:
                    pool.apply(_babble_job, (cfg_dict, str(work), babble))
                bar = None
                if progress:
                    try:
                        from tqdm import tqdm
                        bar = tqdm(total=n_utts, unit="utt", desc="synth", mininterval=2.0)
                    except ImportError:  # pragma: no cover
                        bar = None
                for _, n, secs, cpu in pool.imap_unordered(_synth_job, todo):
                    audio_secs += secs
                    job_cpu += cpu
                    if bar is not None:
                        bar.update(n)
                if bar is not None:
                    bar.close()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    records: Dict[str, List[dict]] = {}
    for split, lst in specs.items():
        recs = []
        for j in range(0, len(lst), cfg.utts_per_job):
            recs.extend(json.loads((work / "jobs" / split / f"job{j // cfg.utts_per_job:04d}.json").read_text()))
        records[split] = recs
    info = _finish(root, cfg, records, speakers, babble,
                   {"generator_vocab": len(gen.vocabulary), "espeak_version": espeak_version}, gen)
    mark_done(root)
    wall = time.time() - t_start
    total_h = sum(v["hours"] for v in info["splits"].values())
    log.info("synthetic corpus done: %d utterances, %.3f h of audio (%.0f s made now in %.1f s of worker CPU, "
             "%.0f audio-s per CPU-s), %.1f s wall", sum(v["utterances"] for v in info["splits"].values()),
             total_h, audio_secs, job_cpu, audio_secs / job_cpu if job_cpu else float("nan"), wall)
    return info
