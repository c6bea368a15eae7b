"""A ctypes wrapper of libespeak-ng: synthesis with word and phoneme events (a true segmentation).

The library is initialised in synchronous mode with ``espeakINITIALIZE_PHONEME_EVENTS``; the synthesis
callback receives the audio in chunks together with events. Word events carry the word's character
position in the text; phoneme events carry the phoneme mnemonic (packed in ``id.number``) and ``sample``,
the position of the phoneme's start in the 22,050 Hz output. libespeak-ng has global state, so there is
one :class:`Espeak` per process (:func:`get_espeak`); each worker process initialises its own.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

log = logging.getLogger(__name__)

LIBRARY_NAME = "libespeak-ng.so.1"
DEBIAN_PACKAGE = "libespeak-ng1"

# espeak_AUDIO_OUTPUT, espeak_POSITION_TYPE, flags and event types of speak_lib.h
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
espeakCHARS_UTF8 = 1
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
espeakINITIALIZE_DONT_EXIT = 0x8000
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_END = 5
EVENT_MSG_TERMINATED = 6
EVENT_PHONEME = 7
# espeak_PARAMETER
espeakRATE = 1
espeakVOLUME = 2
espeakPITCH = 3
espeakRANGE = 4
espeakWORDGAP = 7

NATIVE_RATE = 22050


class EspeakError(RuntimeError):
    """libespeak-ng is missing, failed, or a voice is unavailable."""


class SynthMismatch(EspeakError):
    """espeak's events could not be matched with the words of the text (the caller may retry)."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def load_library(name: Optional[str] = None) -> ctypes.CDLL:
    """Load libespeak-ng, or raise :class:`EspeakError` naming the library and its Debian package."""
    candidates = [name] if name else [LIBRARY_NAME, ctypes.util.find_library("espeak-ng")]
    errors = []
    for cand in candidates:
        if not cand:
            continue
        try:
            return ctypes.CDLL(cand)
        except OSError as e:  # pragma: no cover - depends on the machine
            errors.append(f"{cand}: {e}")
    raise EspeakError(
        f"cannot load the espeak-ng C library ({name or LIBRARY_NAME}): "
        f"{'; '.join(errors) or 'not found'}. Install it with `apt-get install {DEBIAN_PACKAGE}` "
        f"(Debian/Ubuntu package {DEBIAN_PACKAGE}; the espeak-ng package pulls it in)."
    )


@dataclass
class PhoneEvent:
    phone: str  # the espeak mnemonic, as reported
    start: int  # sample index at 22,050 Hz
    word: int  # index of the word (0-based) in the synthesised text, -1 before the first word


@dataclass
class SynthResult:
    audio: np.ndarray  # int16 at 22,050 Hz
    phones: List[PhoneEvent] = field(default_factory=list)  # pauses included, in order
    num_words: int = 0

    @property
    def num_samples(self) -> int:
        return int(self.audio.shape[0])


def _mnemonic(number: int) -> str:
    raw = (number & 0xFFFFFFFF).to_bytes(4, "little")
    raw = raw.split(b"\0", 1)[0]  # the bytes after the terminator are not cleared by espeak
    return raw.decode("latin-1")


class Espeak:
    """One initialised libespeak-ng (synchronous mode, phoneme events)."""

    def __init__(self, library: Optional[str] = None):
        lib = load_library(library)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                     espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed ({rate}): is espeak-ng-data installed?")
        if rate != NATIVE_RATE:
            raise EspeakError(f"espeak-ng reports a sample rate of {rate} Hz, expected {NATIVE_RATE}")
        self.sample_rate = rate
        path = ctypes.c_char_p()
        self.version = (lib.espeak_Info(ctypes.byref(path)) or b"?").decode()
        self.data_path = Path((path.value or b"").decode())
        self._lib = lib
        self._chunks: List[np.ndarray] = []
        self._events: List[Tuple[int, int, int, int]] = []  # (type, text_position, sample, number)
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: Optional[str] = None
        self._checked: Dict[str, bool] = {}
        self._isolated: Dict[Tuple[str, str], List[str]] = {}
        self._used = False  # synthesised already: its state is no longer the initial one

    # -- callback ---------------------------------------------------------------------------------
    def _on_synth(self, wav, n, events) -> int:
        try:
            if n > 0 and wav:
                self._chunks.append(np.frombuffer(ctypes.string_at(wav, 2 * n), dtype=np.int16))
            i = 0
            while True:
                ev = events[i]
                if ev.type == EVENT_LIST_TERMINATED:
                    break
                if ev.type in (EVENT_WORD, EVENT_PHONEME):
                    self._events.append((ev.type, ev.text_position, ev.sample, ev.id.number))
                i += 1
        except BaseException as e:  # noqa: BLE001 - an exception must not cross the C callback
            self._callback_error = e
            return 1  # abort the synthesis
        return 0

    # -- voices -----------------------------------------------------------------------------------
    def variant_exists(self, variant: str) -> bool:
        return (self.data_path / "voices" / "!v" / variant).is_file()

    def check_voice(self, voice: str, variant: Optional[str] = None) -> None:
        """Raise :class:`EspeakError` if the voice (or the variant) is not available.

        The check loads the voice in a forked child: every voice loaded in this process queues an
        event that the next synthesis delivers, and many of them push the first word and phoneme
        events out of the callback's event list. The library's state here stays as it is.
        """
        key = f"{voice}+{variant}" if variant else voice
        if self._checked.get(key):
            return
        if variant and not self.variant_exists(variant):
            raise EspeakError(f"espeak-ng voice variant {variant!r} not found in "
                              f"{self.data_path / 'voices' / '!v'} (see `espeak-ng --voices=variant`)")
        err = run_forked(self, _set_voice_status, key)
        if err != 0:
            raise EspeakError(f"espeak-ng voice {voice!r} is not available (espeak_SetVoiceByName returned "
                              f"{err}; see `espeak-ng --voices=en`)")
        self._checked[key] = True

    def preload(self, voice: str = "en") -> None:
        """Load a voice once in this process so that forked children find the English dictionary
        loaded (about 4 ms less per utterance). Every worker calls it the same way right after
        initialisation, so all workers fork from the same library state."""
        if self._used:
            raise RuntimeError("preload before any synthesis")
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng voice {voice!r} is not available")

    def set_voice(self, voice: str, variant: Optional[str], rate: int, pitch: int, pitch_range: int) -> None:
        """Load a voice and set its parameters (meant for the forked child that synthesises)."""
        key = f"{voice}+{variant}" if variant else voice
        if variant and not self.variant_exists(variant):
            raise EspeakError(f"espeak-ng voice variant {variant!r} not found in "
                              f"{self.data_path / 'voices' / '!v'} (see `espeak-ng --voices=variant`)")
        err = self._lib.espeak_SetVoiceByName(key.encode())  # also resets the parameters
        if err != 0:
            raise EspeakError(f"espeak-ng voice {voice!r} is not available (espeak_SetVoiceByName returned "
                              f"{err}; see `espeak-ng --voices=en`)")
        self._voice = key
        for param, value in ((espeakRATE, rate), (espeakPITCH, pitch), (espeakRANGE, pitch_range),
                             (espeakVOLUME, 100), (espeakWORDGAP, 0)):
            if self._lib.espeak_SetParameter(param, int(value), 0) != 0:
                raise EspeakError(f"espeak_SetParameter({param}, {value}) failed for voice {key}")

    # -- synthesis --------------------------------------------------------------------------------
    def synth(self, text: str) -> SynthResult:
        """Synthesise ``text`` (words separated by single spaces, no punctuation) with the current voice.

        Returns the 22,050 Hz audio and every phoneme event (pauses included) with its start sample and
        the index of the word it belongs to (from the word events' character positions).
        """
        data = text.encode("utf-8")
        self._used = True
        self._chunks, self._events = [], []
        self._callback_error: Optional[BaseException] = None
        err = self._lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, None, None)
        if err != 0:
            raise EspeakError(f"espeak_Synth failed ({err}) for text {text!r} with voice {self._voice}")
        if self._callback_error is not None:
            raise EspeakError(f"the synthesis callback failed for {text!r}: {self._callback_error!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        words = text.split(" ")
        starts, pos = {}, 0
        for i, w in enumerate(words):
            starts[pos + 1] = i  # espeak's text positions are 1-based
            pos += len(w) + 1
        # phones grouped by word event; espeak sometimes voices several words under one event
        # ("there was", "in the"): such a group is split below with the words' isolated pronunciations
        groups: List[Tuple[int, List[Tuple[str, int]]]] = []  # (first word, [(mnemonic, sample)])
        pauses: List[Tuple[int, int]] = []  # (position in the phone sequence, sample)
        current = -1
        n_phones = 0
        for etype, text_pos, sample, number in self._events:
            sample = min(max(int(sample), 0), audio.shape[0])
            if etype == EVENT_WORD:
                current = starts.get(text_pos, -1)  # espeak adds a word event at 0 after the last word
                if current >= 0:
                    groups.append((current, []))
                continue
            m = _mnemonic(number)
            if not m.strip() or m.startswith("_"):
                pauses.append((n_phones, sample))
                continue
            if current < 0 or not groups:
                raise SynthMismatch(f"phoneme {m!r} outside any word of {text!r}")
            groups[-1][1].append((m, sample))
            n_phones += 1
        firsts = [g[0] for g in groups]
        if firsts != sorted(set(firsts)) or (firsts and firsts[0] != 0):
            raise SynthMismatch(f"word events {firsts} out of order for {text!r}")
        phones: List[PhoneEvent] = []
        for gi, (first, ph) in enumerate(groups):
            last = groups[gi + 1][0] if gi + 1 < len(groups) else len(words)
            owners = self._split_group(words[first:last], [m for m, _ in ph], text)
            phones.extend(PhoneEvent(m, smp, first + o) for (m, smp), o in zip(ph, owners))
        if len(set(p.word for p in phones)) != len(words):
            raise SynthMismatch(f"some words of {text!r} have no phoneme")
        # re-insert the pauses (they end the phone before them) in sequence order
        out: List[PhoneEvent] = []
        pi = 0
        for i, p in enumerate(phones):
            while pi < len(pauses) and pauses[pi][0] <= i:
                out.append(PhoneEvent("_", pauses[pi][1], -1))
                pi += 1
            out.append(p)
        out.extend(PhoneEvent("_", smp, -1) for _, smp in pauses[pi:])
        return SynthResult(audio=audio, phones=out, num_words=len(words))

    def isolated_phonemes(self, word: str) -> List[str]:
        """espeak's pronunciation of ``word`` alone with the current voice (mnemonics, no stress)."""
        key = (self._voice or "", word)
        if key not in self._isolated:
            buf = ctypes.c_char_p(word.encode("utf-8"))
            raw = self._lib.espeak_TextToPhonemes(ctypes.byref(buf), espeakCHARS_UTF8, ord("|") << 8) or b""
            phs = []
            for tok in raw.decode("latin-1").replace(" ", "|").split("|"):
                tok = tok.replace("'", "").replace(",", "")
                if tok and not tok.startswith("_"):
                    phs.append(tok)
            self._isolated[key] = phs
        return self._isolated[key]

    def _split_group(self, words: List[str], phones: List[str], text: str) -> List[int]:
        """Which word (0..len(words)-1) of a merged group each phone belongs to.

        Contiguous, every word at least one phone; split points minimise the summed edit distance of
        each word's share to its isolated pronunciation.
        """
        k, n = len(words), len(phones)
        if k == 1:
            return [0] * n
        if n < k:
            raise SynthMismatch(f"{n} phonemes for the {k} words {words} in {text!r}")
        refs = [self.isolated_phonemes(w) for w in words]
        inf = float("inf")
        # best[j][i]: cost of giving phones[:i] to words[:j]; back pointers in arg
        best = [[inf] * (n + 1) for _ in range(k + 1)]
        arg = [[0] * (n + 1) for _ in range(k + 1)]
        best[0][0] = 0.0
        for j in range(1, k + 1):
            for i in range(j, n - (k - j) + 1):
                for s in range(j - 1, i):
                    if best[j - 1][s] == inf:
                        continue
                    c = best[j - 1][s] + _edit_distance(phones[s:i], refs[j - 1])
                    if c < best[j][i]:
                        best[j][i], arg[j][i] = c, s
        owners = [0] * n
        i = n
        for j in range(k, 0, -1):
            s = arg[j][i]
            for t in range(s, i):
                owners[t] = j - 1
            i = s
        return owners


def _edit_distance(a: List[str], b: List[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def _set_voice_status(es: "Espeak", key: str) -> int:
    return int(es._lib.espeak_SetVoiceByName(key.encode()))


def run_pristine(es: "Espeak", fn, *args):
    """Run ``fn(es, *args)`` in a forked child of a process whose espeak has not synthesised yet.

    libespeak-ng keeps state from one synthesis to the next (e.g. the pitch flutter index and the
    noise generator), so the same text and voice give slightly different audio depending on what was
    said before. A fork of the freshly initialised library starts every utterance from the same state,
    which makes the corpus independent of which worker made an utterance and in what order. The
    result (or the exception) comes back pickled through a pipe.
    """
    if es._used:
        raise RuntimeError("run_pristine needs an Espeak that has not synthesised anything")
    return run_forked(es, fn, *args)


def run_forked(es: "Espeak", fn, *args):
    """Run ``fn(es, *args)`` in a forked child; its result (or exception) comes back pickled."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(rfd)
            try:
                payload = pickle.dumps((True, fn(es, *args)), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as e:  # noqa: BLE001 - handed to the parent
                payload = pickle.dumps((False, e), protocol=pickle.HIGHEST_PROTOCOL)
            data = struct.pack("<Q", len(payload)) + payload
            view = memoryview(data)
            while view:
                n = os.write(wfd, view)
                view = view[n:]
            os.close(wfd)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    with os.fdopen(rfd, "rb") as f:
        head = f.read(8)
        if len(head) == 8:
            (size,) = struct.unpack("<Q", head)
            chunks.append(f.read(size))
    _, status = os.waitpid(pid, 0)
    if not chunks or status != 0:
        raise EspeakError(f"the espeak-ng child process failed (status {status})")
    ok, value = pickle.loads(chunks[0])
    if not ok:
        raise value
    return value


_INSTANCE: Optional[Espeak] = None
_INSTANCE_PID: Optional[int] = None


def get_espeak() -> Espeak:
    """The process's :class:`Espeak`, initialised on first use (again after a fork)."""
    global _INSTANCE, _INSTANCE_PID
    if _INSTANCE is None or _INSTANCE_PID != os.getpid():
        _INSTANCE = Espeak()
        _INSTANCE_PID = os.getpid()
        log.debug("espeak-ng %s initialised (data %s)", _INSTANCE.version, _INSTANCE.data_path)
    return _INSTANCE
