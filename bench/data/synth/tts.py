"""Speech from eSpeak NG (the library and voices shipped by ``espeakng-loader``) via ctypes.

``espeak_Initialize`` runs in synchronous mode with phoneme events, so one ``espeak_Synth``
call hands back the 22.05 kHz int16 samples and, for every phoneme, its mnemonic (``'eI``,
``m``, ``_`` ...) and its start in ms. The samples are resampled to 16 kHz with
``scipy.signal.resample_poly(up=320, down=441)``.

eSpeak keeps global state (one voice, one callback per process), so calls are serialised by a
lock; parallel corpus workers are separate processes, each with its own library instance.

Determinism: some of eSpeak's synthesis state outlives an utterance (the pitch-flutter phase,
the roughness cycle counter, the automatic gain, the breath-noise generator), so the same text
would come out slightly differently depending on what was spoken before. To make every
utterance a pure function of (text, prosody), the library runs on a private copy of its data
folder (symlinks) whose voice variants are the shipped ones plus ``flutter 0`` and
``roughness 8`` (no flutter, no roughness modulation), the noise generator is reseeded with
``espeak_ng_SetRandSeed`` and a short quiet primer utterance returns the gain control to unity
before each synthesis.

Voice quality (``Prosody.quality``): extra voice-file lines (``tone``, ``breath``,
``formant``) go into a sibling of the variant's private file, named by their hash and written
on first use, so a quality is as deterministic as the variant itself.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

ESPEAK_RATE = 22_050

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_EVENT_END = 5
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}

_LOCK = threading.Lock()


class TTSError(RuntimeError):
    """eSpeak NG could not be loaded or refused a request."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Prosody:
    """eSpeak parameters of one utterance (eSpeak's own units)."""

    variant: str = "f3"  # one of eSpeak's voice variants (voices/!v): f1..f5, m1..m7, Annie...
    language: str = "en-us"
    rate: int = 175  # words per minute (80..450)
    pitch: int = 50  # base pitch 0..100
    range: int = 50  # pitch range 0..100
    volume: int = 100  # amplitude 0..200
    quality: tuple[str, ...] = ()
    """Voice-quality lines added to the variant's voice file (eSpeak's ``tone``, ``breath``,
    ``formant`` attributes: spectral tilt, breathiness, formant strength); () for none."""


@dataclass
class Speech:
    """Synthesised speech at 16 kHz with its phoneme timing."""

    audio: np.ndarray  # (N,) float32 in [-1, 1], 16 kHz
    phonemes: list[tuple[int, str]]  # (start ms, eSpeak mnemonic); "_" marks pauses
    duration_ms: int  # where eSpeak's END event fell


_VARIANT_PREFIX = "talkbench-"
_VARIANT_SUFFIX = "\n// talkbench: deterministic output\nflutter 0\nroughness 8\n"


def _private_data_dir(source: Path) -> Path:
    """A temporary eSpeak data folder: links to ``source`` plus deterministic voice variants."""
    folder = Path(tempfile.mkdtemp(prefix="talkbench-espeak-"))
    atexit.register(shutil.rmtree, folder, True)
    for entry in source.iterdir():
        if entry.name == "voices":
            continue
        try:
            os.symlink(entry, folder / entry.name, target_is_directory=entry.is_dir())
        except OSError:  # no symlinks (some Windows setups): copy
            copy = shutil.copytree if entry.is_dir() else shutil.copy2
            copy(entry, folder / entry.name)
    variants = folder / "voices" / "!v"
    variants.mkdir(parents=True)
    for voice in (source / "voices" / "!v").iterdir():
        if voice.is_file():
            text = voice.read_text(encoding="utf-8", errors="replace")
            (variants / f"{_VARIANT_PREFIX}{voice.name}").write_text(text + _VARIANT_SUFFIX,
                                                                    encoding="utf-8")
    return folder


class _Engine:
    """The loaded library, initialised once per process."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:
            raise TTSError("espeakng-loader is not installed (pip install espeakng-loader)") \
                from err
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.data_dir = _private_data_dir(Path(espeakng_loader.get_data_path()))
        data = str(self.data_dir).encode()
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 500, data,
                                          _INITIALIZE_PHONEME_EVENTS)
        if rate != ESPEAK_RATE:
            raise TTSError(f"espeak_Initialize returned {rate} (expected {ESPEAK_RATE} Hz)")
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                          ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                          ctypes.c_void_p, ctypes.c_void_p]
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        self._callback = _CALLBACK(self._on_audio)  # kept alive as long as the engine
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n: int, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                self._events.append((ev.type, ev.audio_position, ev.id.string.decode("utf-8",
                                                                                    "replace")))
            elif ev.type == _EVENT_END:
                self._events.append((ev.type, ev.audio_position, ""))
            i += 1
        return 0

    def synth(self, text: str, prosody: Prosody) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        """One utterance from a clean state (see the module notes on determinism)."""
        self._run("ah", Prosody(variant=prosody.variant, language=prosody.language, volume=10))
        self.lib.espeak_ng_SetRandSeed(1)
        return self._run(text, prosody)

    def _run(self, text: str, prosody: Prosody) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        self._chunks, self._events = [], []
        voice = f"{prosody.language}+{self._variant(prosody)}"
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise TTSError(f"eSpeak NG has no voice {voice!r}")
        for name, value in (("rate", prosody.rate), ("pitch", prosody.pitch),
                            ("range", prosody.range), ("volume", prosody.volume)):
            self.lib.espeak_SetParameter(_PARAM[name], int(value), 0)
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                    None, None)
        if err != 0:
            raise TTSError(f"espeak_Synth failed ({err}) for {text!r}")
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self._events

    def _variant(self, prosody: Prosody) -> str:
        """The name of the private voice variant of ``prosody``: the shipped variant's file
        (plus the determinism lines), and for a voice quality a sibling file with its lines
        appended (written on first use, named by their hash)."""
        base = self.data_dir / "voices" / "!v" / f"{_VARIANT_PREFIX}{prosody.variant}"
        if not base.is_file():
            raise TTSError(f"eSpeak NG has no voice variant {prosody.variant!r}")
        if not prosody.quality:
            return base.name
        lines = "\n".join(prosody.quality)
        path = base.with_name(f"{base.name}-{hashlib.sha256(lines.encode()).hexdigest()[:10]}")
        if not path.is_file():
            path.write_text(base.read_text(encoding="utf-8") + "// talkbench: voice quality\n"
                            + lines + "\n", encoding="utf-8")
        return path.name


@cache
def _engine() -> _Engine:
    return _Engine()


def synthesize(text: str, prosody: Prosody = Prosody()) -> Speech:
    """Speak ``text`` with ``prosody``; 16 kHz float32 audio and phoneme start times (ms)."""
    from scipy.signal import resample_poly

    with _LOCK:
        raw, events = _engine().synth(text, prosody)
    if raw.size == 0:
        raise TTSError(f"eSpeak NG produced no audio for {text!r}")
    # 22050 -> 16000 Hz: up 320, down 441
    audio = resample_poly(raw.astype(np.float64) / 32768.0, 320, 441).astype(np.float32)
    phonemes = [(pos, name) for kind, pos, name in events if kind == _EVENT_PHONEME]
    ends = [pos for kind, pos, _ in events if kind == _EVENT_END]
    duration_ms = ends[-1] if ends else int(1000 * raw.size / ESPEAK_RATE)
    return Speech(audio=np.clip(audio, -1.0, 1.0), phonemes=phonemes, duration_ms=duration_ms)
