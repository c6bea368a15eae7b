"""A tiny synthetic digit corpus (espeak-ng) with exactly known word starts, for tests and benchmarks.

Each word is synthesised alone (``espeak-ng -w``), its leading/trailing silence trimmed, and the words of
an utterance are concatenated with random silences between them (and around them), so the start time of
every word is known to the sample. A low noise floor is added. Also writes a Kaldi lang dir for the
digits (espeak-ng phonemes without stress marks, SIL optional between words, the three-state topology)
and, if asked, a lhotse CutSet with stored MFCC, as stage 2 would.
"""
from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, Path]
RATE = 16000
ESPEAK_RATE = 22050
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VOICES = ["en-us", "en-us+m3", "en-us+f2", "en-gb", "en-gb+f4", "en-gb-scotland", "en-gb-x-rp+m5",
          "en-us+f5", "en-gb+m2", "en-us+klatt"]


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_phones(word: str, voice: str = "en-us") -> List[str]:
    out = subprocess.run(["espeak-ng", "-q", "-x", "--sep=_", "-v", voice, word], capture_output=True,
                         text=True, check=True).stdout
    return [p.replace("'", "").replace(",", "") for p in out.strip().split("_") if p.replace("'", "").strip()]


def synth_word(word: str, voice: str, speed: int) -> np.ndarray:
    import soundfile as sf

    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "w.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), word], check=True,
                       capture_output=True)
        x, sr = sf.read(str(wav), dtype="float32")
    x = resample(x, sr, RATE)
    thr = 0.02 * np.abs(x).max()
    nz = np.flatnonzero(np.abs(x) > thr)
    return x[nz[0]: nz[-1] + 1] if len(nz) else x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """FFT resampling (band-limited by truncating the spectrum), enough for test audio."""
    if sr_in == sr_out:
        return x.astype(np.float32)
    n_out = int(round(len(x) * sr_out / sr_in))
    X = np.fft.rfft(x.astype(np.float64))
    Y = np.zeros(n_out // 2 + 1, dtype=complex)
    k = min(len(X), len(Y))
    Y[:k] = X[:k]
    return (np.fft.irfft(Y, n_out) * (n_out / len(x))).astype(np.float32)


@dataclass
class ToyCorpus:
    audio: Dict[str, np.ndarray]
    text: Dict[str, List[str]]
    spk: Dict[str, str]
    word_starts: Dict[str, List[Tuple[str, float, float]]]  # (word, start s, duration s)
    lexicon: Dict[str, str]
    rate: int = RATE
    feats: Dict[str, np.ndarray] = field(default_factory=dict)  # raw 13-dim MFCC

    def mfcc(self) -> Dict[str, np.ndarray]:
        from lhotse.features import Mfcc, MfccConfig

        ex = Mfcc(MfccConfig())
        for u, x in self.audio.items():
            if u not in self.feats:
                self.feats[u] = np.asarray(ex.extract(x, self.rate), dtype=np.float32)
        return self.feats


def make_corpus(num_utts: int, voices: Sequence[str] = VOICES[:4], words: Sequence[str] = WORDS,
                min_words: int = 2, max_words: int = 4, seed: int = 0, prefix: str = "utt",
                speeds: Sequence[int] = (150, 180), noise_db: float = -45.0) -> ToyCorpus:
    """``num_utts`` utterances spread over ``voices`` (one voice = one speaker)."""
    rng = np.random.default_rng(seed)
    cache: Dict[tuple, np.ndarray] = {}
    audio, text, spk, starts = {}, {}, {}, {}
    for i in range(num_utts):
        voice = voices[i % len(voices)]
        speed = int(rng.choice(list(speeds)))
        ws = [str(w) for w in rng.choice(list(words), size=int(rng.integers(min_words, max_words + 1)))]
        pieces, segs, t = [], [], 0
        for j, w in enumerate(ws):
            gap = float(rng.uniform(0.15, 0.35)) if j == 0 else float(rng.choice([0.0, rng.uniform(0.08, 0.3)]))
            n = int(gap * RATE)
            pieces.append(np.zeros(n, dtype=np.float32))
            t += n
            key = (w, voice, speed)
            if key not in cache:
                cache[key] = synth_word(w, voice, speed)
            seg = cache[key]
            segs.append((w, t / RATE, len(seg) / RATE))
            pieces.append(seg)
            t += len(seg)
        pieces.append(np.zeros(int(rng.uniform(0.15, 0.35) * RATE), dtype=np.float32))
        x = np.concatenate(pieces)
        x = x / max(np.abs(x).max(), 1e-6) * 0.5
        x = x + (10 ** (noise_db / 20) * 0.5) * rng.standard_normal(len(x)).astype(np.float32)
        u = f"{prefix}{i:04d}"
        spk_id = f"spk{voices.index(voice):02d}"
        audio[u] = x.astype(np.float32)
        text[u] = ws
        spk[u] = spk_id
        starts[u] = segs
    lex = {w: " ".join(espeak_phones(w)) for w in words}
    return ToyCorpus(audio, text, spk, starts, lex)


def write_lang(out_dir: PathLike, lexicon: Dict[str, str], sil_prob: float = 0.5, num_states: int = 3,
               self_loop: float = 0.75) -> Path:
    """A Kaldi lang dir: phones.txt (<eps>, SIL, SPN, phones, #0..), words.txt (<eps>, <UNK>, words, #0,
    <s>, </s>), L.fst and L_disambig.fst (optional silence), topo, phones/{silence,disambig}.int,
    oov.int. Pronunciations must be prefix-free (no disambiguation symbols beyond #0 are added)."""
    from asrkit.fst import kaldifst

    out = Path(out_dir)
    (out / "phones").mkdir(parents=True, exist_ok=True)
    lex = dict(lexicon)
    lex["<UNK>"] = "SPN"
    prons = {w: p.split() for w, p in lex.items()}
    ps = [tuple(p) for p in prons.values()]
    for a in ps:
        for b in ps:
            if a != b and b[: len(a)] == a:
                raise ValueError(f"pronunciation {' '.join(a)} is a prefix of {' '.join(b)}")
    real = ["SIL", "SPN"] + sorted({p for pr in prons.values() for p in pr} - {"SIL", "SPN"})
    syms = ["<eps>"] + real + ["#0", "#1"]
    pid = {p: i for i, p in enumerate(syms)}
    words = ["<eps>"] + sorted(lex) + ["#0", "<s>", "</s>"]
    wid = {w: i for i, w in enumerate(words)}
    (out / "phones.txt").write_text("".join(f"{p} {i}\n" for p, i in pid.items()))
    (out / "words.txt").write_text("".join(f"{w} {i}\n" for w, i in wid.items()))
    (out / "phones/disambig.int").write_text(f"{pid['#0']}\n{pid['#1']}\n")
    (out / "phones/silence.int").write_text(f"{pid['SIL']}\n{pid['SPN']}\n")
    (out / "phones/wdisambig_phones.int").write_text(f"{pid['#0']}\n")
    (out / "phones/wdisambig_words.int").write_text(f"{wid['#0']}\n")
    (out / "oov.int").write_text(f"{wid['<UNK>']}\n")
    (out / "oov.txt").write_text("<UNK>\n")
    q = 1.0 - self_loop
    states = "".join(f"<State> {s} <PdfClass> {s} <Transition> {s} {self_loop} <Transition> {s + 1} {q} </State>\n"
                     for s in range(num_states))
    (out / "topo").write_text("<Topology>\n<TopologyEntry>\n<ForPhones>\n"
                              + " ".join(str(pid[p]) for p in real) + "\n</ForPhones>\n" + states
                              + f"<State> {num_states} </State>\n</TopologyEntry>\n</Topology>\n")
    sil_cost, nosil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)

    def lfst(disambig: bool):
        lines = [f"0 1 0 0 {nosil_cost}", f"0 2 {pid['SIL']} 0 {sil_cost}",
                 f"2 1 {pid['#1'] if disambig else 0} 0"]
        nxt = 3
        for w in sorted(lex):
            src, pr = 1, prons[w]
            for i, ph in enumerate(pr):
                olab = wid[w] if i == 0 else 0
                if i == len(pr) - 1:
                    lines += [f"{src} 1 {pid[ph]} {olab} {nosil_cost}", f"{src} 2 {pid[ph]} {olab} {sil_cost}"]
                else:
                    lines.append(f"{src} {nxt} {pid[ph]} {olab}")
                    src, nxt = nxt, nxt + 1
        if disambig:
            lines.append(f"1 1 {pid['#0']} {wid['#0']}")
        lines.append("1")
        f = kaldifst.compile("\n".join(lines) + "\n")
        kaldifst.arcsort(f, sort_type="olabel")
        return f

    lfst(False).write(str(out / "L.fst"))
    lfst(True).write(str(out / "L_disambig.fst"))
    return out


def write_word_loop_g(lang_dir: PathLike, out_fst: PathLike, words: Sequence[str]) -> Path:
    """G.fst: any sequence of one or more ``words`` (uniform), over the lang dir's words.txt."""
    from asrkit.fst import kaldifst

    wid = {}
    for line in (Path(lang_dir) / "words.txt").read_text().splitlines():
        s, i = line.split()
        wid[s] = int(i)
    c = math.log(len(words) + 1)
    lines = [f"0 1 {wid[w]} {wid[w]} {math.log(len(words))}" for w in words]
    lines += [f"1 1 {wid[w]} {wid[w]} {c}" for w in words]
    lines.append(f"1 {c}")
    g = kaldifst.compile("\n".join(lines) + "\n")
    kaldifst.arcsort(g, sort_type="ilabel")
    g.write(str(out_fst))
    return Path(out_fst)


def write_cuts(corpus: ToyCorpus, out_dir: PathLike, name: str = "train") -> Path:
    """Wave files, a lhotse CutSet with supervisions (text, speaker) and stored MFCC (numpy files):
    ``<out_dir>/cuts_<name>.jsonl.gz``."""
    import soundfile as sf
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
    from lhotse.features import Mfcc, MfccConfig
    from lhotse.features.io import NumpyFilesWriter

    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    recs, sups = [], []
    for u, x in corpus.audio.items():
        p = out / "wav" / f"{u}.wav"
        sf.write(str(p), x, corpus.rate)
        r = Recording.from_file(p, recording_id=u)
        recs.append(r)
        sups.append(SupervisionSegment(id=u, recording_id=u, start=0.0, duration=r.duration,
                                       text=" ".join(corpus.text[u]), speaker=corpus.spk[u]))
    cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings(recs),
                                 supervisions=SupervisionSet.from_segments(sups))
    cuts = cuts.compute_and_store_features(extractor=Mfcc(MfccConfig()), storage_path=str(out / f"storage_{name}"),
                                           storage_type=NumpyFilesWriter, num_jobs=1)
    path = out / f"cuts_{name}.jsonl.gz"
    cuts.to_file(path)
    return path
