"""eSpeak NG, the formant speech synthesizer, driven through its C API: text in, 16-bit PCM out, with the audio
position of every word.

The library and its voice data come from the `espeakng-loader` wheel (the `speech` extra), loaded with ctypes in
retrieval mode: eSpeak hands each block of synthesized samples to a callback, together with its events; a word
event carries the word's place in the text and the sample where its sound starts. eSpeak NG is GPL-3.0: it is an
optional dependency, imported here only, when speech is synthesized.

The engine is one per process (eSpeak keeps global state), so `synthesize` holds a lock. Part of that state is
never reset: the pitch flutter and the glottal pulse's phase go on from one text to the next, so the samples of a
text depend on what the process synthesized before it (the words, their timing and the voice do not). The same
texts synthesized in the same order by a fresh process give the same samples: `training.data.speech` synthesizes in
chunks, each in a process of its own.

Example:
    audio, words = synthesize("seven three nine", Voice("en-us", "f3"), rate=160)
    audio       # int16 [samples] at SAMPLE_RATE (22,050 Hz)
    words       # [Word(text='seven', start=0), Word(text='three', start=9833), ...] (start in samples)
"""

import collections
import ctypes
import os
import threading

import numpy as np

# eSpeak NG's own output rate (espeak_Initialize returns it; checked when the engine starts).
SAMPLE_RATE = 22050

# The ranges of espeak_SetParameter, as speak_lib.h documents them.
RATE_RANGE = (80, 450)  # words per minute
PITCH_RANGE = (0, 100)  # base pitch
PITCH_VARIATION_RANGE = (0, 100)  # the range of the pitch's movement: 0 is a monotone
WORD_GAP_RANGE = (0, 50)  # pause between words, in units of 10 ms at the default rate

Voice = collections.namedtuple("Voice", ["language", "variant"])
Voice.__doc__ = """A speaker: an eSpeak language or accent (e.g. "en-us", "en-gb-scotland") and a voice variant from
espeak-ng-data/voices/!v (e.g. "m3", "f2", "klatt4"), which sets the timbre, the pitch and the formants."""
Word = collections.namedtuple("Word", ["text", "start"])
Word.__doc__ = """A word of the synthesized text and the first sample of its sound."""

# speak_lib.h: espeak_AUDIO_OUTPUT, espeak_EVENT_TYPE, espeak_PARAMETER, espeak_ERROR.
_AUDIO_OUTPUT_RETRIEVAL = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_END = 0, 1, 5
_RATE, _PITCH, _RANGE, _WORDGAP = 1, 3, 4, 7
_CHARS_UTF8 = 1
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in bytes of the UTF-8 text
        ("length", ctypes.c_int),  # the word's length in bytes
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # samples since the start of the text
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_lock = threading.Lock()
_engine = None


class _Engine:
    """The loaded library, initialised in retrieval mode, with the callback that collects samples and word events."""

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as error:
            raise ImportError(
                "speech synthesis needs eSpeak NG from the espeakng-loader wheel: pip install 'seqzoo[speech]' "
                "(eSpeak NG is GPL-3.0, so it is an optional extra)"
            ) from error
        self.data_path = espeakng_loader.get_data_path()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_RETRIEVAL, 0, self.data_path.encode(), 0)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"eSpeak NG did not start (espeak_Initialize returned {rate}, expected the sample rate "
                               f"{SAMPLE_RATE}); its data directory is {self.data_path}")
        # eSpeak NG draws from a random generator while it synthesizes (seeded from the clock when it starts): seeded
        # here, the same texts in the same voices give the same samples in every process.
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed(0)
        self.lib = lib
        self._variants = None
        self.chunks, self.words = [], []
        self.callback = _CALLBACK(self._collect)  # kept referenced: eSpeak calls it for as long as the process runs
        lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav, count, events):
        if count > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_WORD:
                self.words.append((event.text_position, event.length, event.sample))
            index += 1
        return 0  # go on synthesizing

    def variants(self):
        if self._variants is None:
            self._variants = sorted(os.listdir(os.path.join(self.data_path, "voices", "!v")))
        return self._variants

    def synthesize(self, text, voice, rate, pitch, pitch_range, word_gap):
        name = f"{voice.language}+{voice.variant}"
        # eSpeak falls back to the language's own voice for a variant it lacks, without an error.
        if voice.variant not in self.variants() or self.lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
            raise ValueError(f"eSpeak NG has no voice {name!r}: expected a language such as 'en-us' and a variant "
                             f"of {self.variants()}")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_WORDGAP, word_gap)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        data = text.encode("utf-8")
        self.chunks, self.words = [], []
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if status != _EE_OK:
            raise RuntimeError(f"eSpeak NG could not synthesize {text!r} (espeak_Synth returned {status})")
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros([0], np.int16)
        # eSpeak reports word positions in bytes of the UTF-8 text, 1-based.
        words = [Word(data[position - 1 : position - 1 + length].decode("utf-8"), sample)
                 for position, length, sample in self.words]
        return audio.astype(np.int16), words


def _get_engine():
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def _check(name, value, limits):
    low, high = limits
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")


def synthesize(text, voice, rate=175, pitch=50, pitch_range=50, word_gap=0):
    """Speaks `text` with `voice`.

    Args:
        text: str, the words to speak.
        voice: a `Voice`.
        rate: int in RATE_RANGE, words per minute (eSpeak's default 175).
        pitch: int in PITCH_RANGE, the base pitch (default 50).
        pitch_range: int in PITCH_VARIATION_RANGE, how far the pitch moves (default 50; 0: a monotone).
        word_gap: int in WORD_GAP_RANGE, an extra pause between words in units of 10 ms (default 0).

    Returns:
        (audio, words): int16 samples [samples] at SAMPLE_RATE, and a `Word` for every word eSpeak spoke, in order,
        with the sample where it starts.

    Raises:
        ImportError: the `speech` extra is not installed.
        ValueError: an unknown voice, or a parameter out of its range.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    if not isinstance(voice, Voice):
        raise ValueError(f"voice must be a Voice(language, variant), got {voice!r}")
    _check("rate", rate, RATE_RANGE)
    _check("pitch", pitch, PITCH_RANGE)
    _check("pitch_range", pitch_range, PITCH_VARIATION_RANGE)
    _check("word_gap", word_gap, WORD_GAP_RANGE)
    with _lock:
        return _get_engine().synthesize(text, voice, rate, pitch, pitch_range, word_gap)


def variants():
    """The names of the voice variants eSpeak NG's data holds (espeak-ng-data/voices/!v), sorted."""
    with _lock:
        return _get_engine().variants()
