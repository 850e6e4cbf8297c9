"""Speech that can be made offline: spoken digit strings and commands synthesized with eSpeak NG, each word aligned
with its samples; and manifests of real recordings.

Utterances. A digit string ("seven three nine", one to seven digits, as TIDIGITS has them) or a command of one or two
words from the Speech Commands core vocabulary ("left", "stop go"), spoken by a speaker at a drawn rate, pitch,
pitch range and gap between words, at a drawn gain, with white or pink noise added at a drawn signal-to-noise ratio
(or none), resampled from eSpeak's 22,050 Hz to 16 kHz. Everything is drawn from a seeded stream per split, so the
same seed gives the same utterances.

Speakers. A speaker is an eSpeak voice variant (espeak-ng-data/voices/!v: the timbre, pitch and formants) in one of
eight English accents. The variants, not the accents, are split: the validation and test variants are never heard in
training, in any accent, so their scores are on unheard voices.

Alignments. eSpeak's word events give the sample where each word's sound starts; a word ends where the next starts
(the last where the audio ends), and each span is trimmed to where the clean signal's 10 ms energy is within 30 dB
of the utterance's loudest: every sample, and so every frame, is a word or silence (`frame_labels`).

Determinism. eSpeak carries part of its state from one text to the next (`training.data.espeak`), so utterances are
synthesized in chunks of CHUNK_SIZE, each in a fresh process: what utterance i of a split says, by whom and how, its
noise and gain depend only on the seed, the split and its chunk, whatever else is synthesized, and the chunks run on
every core. eSpeak NG also draws from a random generator as it synthesizes, seeded from the clock when it starts
(without a seed, the same spec in two fresh processes differed by up to 0.04 of full scale); `training.data.espeak`
seeds it, so the samples are the same in every process.

Real recordings. `read_manifest(data_dir, split)`: DIR/{train,valid,test}.tsv, lines `path<TAB>transcript` with
paths relative to DIR, 16 kHz mono 16-bit PCM WAV files (`read_wav`).

Example:
    splits = speech_splits({"train": 2000, "validation": 200, "test": 200}, seed=0)
    example = splits["test"][0]
    example.audio        # float32 [samples] in [-1, 1] at 16 kHz
    example.text         # 'seven three nine'
    example.words        # (('seven', 4211, 9012), ('three', 9630, 13520), ('nine', 14102, 19010))
    example.speaker      # 'en-gb-scotland+f4'
"""

import collections
import concurrent.futures
import io
import os
import pickle
import subprocess
import sys
import wave

import numpy as np

from training.data import espeak

SAMPLE_RATE = 16000
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# The core words of Warden's Speech Commands (2018), less its digits.
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
WORDS = DIGITS + COMMANDS
# eSpeak NG's English accents (espeak-ng-data/lang/gmw; "en-Shaw" is the Shavian alphabet, not an accent).
ACCENTS = ("en", "en-us", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-us-nyc")
# Variants left out: whispered ones have no voicing at all, and a name with a space cannot be selected by name.
EXCLUDED_VARIANTS = ("whisper", "whisperf", "Mr serious")
SPLITS = ("train", "validation", "test")
# The share of the variants held out for validation and for test.
HELD_OUT = {"validation": 0.1, "test": 0.15}

# The ranges utterances are drawn from (uniform; ints inclusive).
MAX_DIGITS = 7
DIGIT_SHARE = 0.7  # of utterances that are digit strings; the others are commands
RATES = (130, 210)  # words per minute
PITCHES = (25, 75)
PITCH_VARIATIONS = (20, 80)
WORD_GAPS = (0, 4)  # x 10 ms
GAINS_DB = (-20.0, 0.0)  # of the utterance's peak, below full scale
SNRS_DB = (5.0, 40.0)
CLEAN_SHARE = 0.25  # of utterances without noise, when the SNR is drawn

CHUNK_SIZE = 64
TRIM_DB = 30.0

Spec = collections.namedtuple(
    "Spec", ["text", "voice", "rate", "pitch", "pitch_range", "word_gap", "gain_db", "snr_db", "noise", "noise_seed"]
)
Spec.__doc__ = """What one utterance is: its words, its `espeak.Voice` and synthesis parameters, and its gain, its
SNR in dB (None: clean) and the colour ("white" or "pink") and seed of its noise."""
Example = collections.namedtuple("Example", ["audio", "text", "words", "speaker", "snr_db"])
Example.__doc__ = """An utterance: float32 samples [samples] in [-1, 1] at SAMPLE_RATE, its transcript, its words as
(word, first sample, end sample) tuples, its speaker ("language+variant") and its SNR in dB (None: clean)."""


def variants():
    """The voice variants speakers are made of: eSpeak NG's, less EXCLUDED_VARIANTS, sorted."""
    return tuple(v for v in espeak.variants() if v not in EXCLUDED_VARIANTS)


def speaker_splits(seed, names=None):
    """{split: tuple of variants}: a seeded permutation of the variants, cut by HELD_OUT; no variant is in two
    splits. `names` defaults to `variants()`."""
    names = sorted(variants() if names is None else names)
    order = [names[i] for i in np.random.default_rng([seed, 7]).permutation(len(names))]
    test = max(1, round(HELD_OUT["test"] * len(order)))
    validation = max(1, round(HELD_OUT["validation"] * len(order)))
    if len(order) < test + validation + 1:
        raise ValueError(f"{len(order)} voice variants are too few to hold out voices for validation and test")
    return {
        "test": tuple(order[:test]),
        "validation": tuple(order[test : test + validation]),
        "train": tuple(order[test + validation :]),
    }


def draw_transcript(rng, kind=None):
    """A digit string of 1..MAX_DIGITS digits or a command of one or two words; `kind` "digits" or "commands"
    chooses, None draws (DIGIT_SHARE digits)."""
    if kind is None:
        kind = "digits" if rng.random() < DIGIT_SHARE else "commands"
    if kind == "digits":
        return " ".join(DIGITS[i] for i in rng.integers(0, len(DIGITS), rng.integers(1, MAX_DIGITS + 1)))
    if kind == "commands":
        return " ".join(COMMANDS[i] for i in rng.integers(0, len(COMMANDS), rng.integers(1, 3)))
    raise ValueError(f"kind must be 'digits', 'commands' or None, got {kind!r}")


def draw_specs(count, speakers, rng, snr_db="drawn", kind=None):
    """`count` Specs spoken by `speakers` (variants) in drawn accents.

    Args:
        count: int, how many.
        speakers: sequence of variant names.
        rng: a numpy Generator.
        snr_db: "drawn" (CLEAN_SHARE clean, the rest uniform in SNRS_DB), None (all clean) or a number (all at it).
        kind: "digits", "commands" or None (drawn; see `draw_transcript`).
    """
    if not speakers:
        raise ValueError("speakers must name at least one voice variant")
    specs = []
    for _ in range(count):
        text = draw_transcript(rng, kind)
        voice = espeak.Voice(ACCENTS[rng.integers(len(ACCENTS))], speakers[rng.integers(len(speakers))])
        rate, pitch, pitch_range, word_gap = (int(rng.integers(low, high + 1)) for low, high in
                                              (RATES, PITCHES, PITCH_VARIATIONS, WORD_GAPS))
        gain_db = float(rng.uniform(*GAINS_DB))
        if snr_db == "drawn":
            snr = None if rng.random() < CLEAN_SHARE else float(rng.uniform(*SNRS_DB))
        else:
            snr = None if snr_db is None else float(snr_db)
        noise = "white" if rng.random() < 0.5 else "pink"
        specs.append(Spec(text, voice, rate, pitch, pitch_range, word_gap, gain_db, snr, noise,
                          int(rng.integers(2**31))))
    return specs


def resample(audio, rate_in, rate_out=SAMPLE_RATE):
    """float audio [samples] from `rate_in` Hz to `rate_out` Hz (polyphase, scipy's anti-aliasing filter)."""
    from scipy import signal

    if rate_in == rate_out:
        return np.asarray(audio, np.float32)
    divisor = np.gcd(int(rate_in), int(rate_out))
    return signal.resample_poly(audio, rate_out // divisor, rate_in // divisor).astype(np.float32)


def _envelope_db(audio, width):
    """The energy of `audio` in windows of `width` samples centred on each sample, in dB of the loudest."""
    power = np.convolve(audio.astype(np.float64) ** 2, np.ones(width) / width, mode="same")
    return 10 * np.log10(np.maximum(power, 1e-20) / max(power.max(), 1e-20))


def align_words(audio, starts, texts, trim_db=TRIM_DB):
    """((word, start, end), ...) from the words' first samples: a word ends where the next starts (the last at the
    audio's end), trimmed to where the 10 ms energy is within `trim_db` of the loudest."""
    loud = _envelope_db(audio, SAMPLE_RATE // 100) > -trim_db
    ends = list(starts[1:]) + [len(audio)]
    words = []
    for text, start, end in zip(texts, starts, ends):
        voiced = np.flatnonzero(loud[start:end])
        if len(voiced):
            start, end = start + int(voiced[0]), start + int(voiced[-1]) + 1
        words.append((text, int(start), int(max(end, start))))
    return tuple(words)


def noise(kind, count, rng):
    """Unit-power noise [count]: "white", or "pink" (power falling as 1/f)."""
    if kind not in ("white", "pink"):
        raise ValueError(f"noise must be 'white' or 'pink', got {kind!r}")
    x = rng.standard_normal(count)
    if kind == "pink":
        spectrum = np.fft.rfft(x)
        spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
        x = np.fft.irfft(spectrum, n=count)
    return x / max(np.sqrt(np.mean(x**2)), 1e-12)  # exactly unit power: the SNR is then exactly the one asked for


def add_noise(audio, words, snr_db, colour, seed):
    """`audio` plus `colour` noise (seeded) whose power is the words' mean power (the whole audio's when there are no
    words) `snr_db` below: the SNR of the speech, not of its silences."""
    voiced = np.concatenate([audio[start:end] for _, start, end in words] or [audio])
    power = np.mean(voiced.astype(np.float64) ** 2)
    return audio + np.sqrt(power / 10 ** (snr_db / 10)) * noise(colour, len(audio), np.random.default_rng(seed))


def render(spec):
    """The `Example` a Spec describes (synthesized in this process: see the module's note on determinism)."""
    pcm, events = espeak.synthesize(spec.text, spec.voice, spec.rate, spec.pitch, spec.pitch_range, spec.word_gap)
    texts = spec.text.split()
    if [e.text.lower() for e in events] != texts:
        raise RuntimeError(f"eSpeak NG spoke {[e.text for e in events]} for {spec.text!r}: its word events do not "
                           "match the words")
    audio = resample(pcm.astype(np.float32) / 32768.0, espeak.SAMPLE_RATE)
    starts = [min(int(round(e.start * SAMPLE_RATE / espeak.SAMPLE_RATE)), len(audio)) for e in events]
    words = align_words(audio, starts, texts)
    audio *= 10 ** (spec.gain_db / 20) / max(np.abs(audio).max(), 1e-6)
    if spec.snr_db is not None:
        audio = add_noise(audio, words, spec.snr_db, spec.noise, spec.noise_seed)
    audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
    return Example(audio, spec.text, words, f"{spec.voice.language}+{spec.voice.variant}", spec.snr_db)


def _render_chunk(specs):
    return [render(spec) for spec in specs]


def _render_in_a_fresh_process(specs):
    """`_render_chunk(specs)` in a new Python process (numpy, scipy and eSpeak only: not the caller's modules)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    command = [sys.executable, "-c", "from training.data import speech; speech._render_stdin_to_stdout()"]
    result = subprocess.run(command, input=pickle.dumps(specs), capture_output=True, env=environment, check=False)
    if result.returncode:
        raise RuntimeError(f"synthesizing {len(specs)} utterances failed (exit status {result.returncode}):\n"
                           f"{result.stderr.decode(errors='replace')[-3000:]}")
    return pickle.loads(result.stdout)


def _render_stdin_to_stdout():
    """The worker of `_render_in_a_fresh_process`: pickled Specs in, pickled Examples out."""
    specs = pickle.load(sys.stdin.buffer)
    pickle.dump(_render_chunk(specs), sys.stdout.buffer)


def render_all(specs, workers=None, chunk_size=CHUNK_SIZE):
    """[Example] for `specs`, in order: chunks of `chunk_size`, each rendered by a fresh process (`workers` at a
    time, default the CPU count). `specs` may also be a list of lists (e.g. one per split): each is chunked from its
    own start, and a list of lists of Examples comes back."""
    specs = list(specs)
    nested = bool(specs) and isinstance(specs[0], list)
    groups = specs if nested else [specs]
    chunks = [(g, group[i : i + chunk_size]) for g, group in enumerate(groups) for i in range(0, len(group), chunk_size)]
    results = [[] for _ in groups]
    if chunks:
        # Threads that each wait on a fresh process: eSpeak's carried state starts anew in every chunk.
        with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
            for (g, _), examples in zip(chunks, pool.map(_render_in_a_fresh_process, [c for _, c in chunks])):
                results[g] += examples
    return results if nested else results[0]


def speech_splits(sizes, seed, snr_db="drawn", kind=None, workers=None, speakers_seed=None):
    """{split: [Example]} for `sizes` ({split: count}), each split from its own seeded stream and its own speakers
    (`speaker_splits` of `speakers_seed`, default `seed`), synthesized in its own chunks; `snr_db` and `kind` as in
    `draw_specs`, for every split."""
    speakers = speaker_splits(seed if speakers_seed is None else speakers_seed)
    specs = {}
    for name, count in sizes.items():
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        specs[name] = draw_specs(count, speakers[name], np.random.default_rng([seed, SPLITS.index(name)]), snr_db, kind)
    return dict(zip(specs, render_all(list(specs.values()), workers)))


def frame_labels(words, num_frames, hop, vocabulary, silence=0):
    """int32 [num_frames]: the id in `vocabulary` ({word: id}) of the word a frame's centre falls in, `silence`
    elsewhere, for frames every `hop` samples (frame f centred at f * hop + hop // 2)."""
    labels = np.full([num_frames], silence, np.int32)
    centres = np.arange(num_frames) * hop + hop // 2
    for text, start, end in words:
        labels[(centres >= start) & (centres < end)] = vocabulary[text]
    return labels


# Real recordings.

MANIFESTS = {"train": "train.tsv", "validation": "valid.tsv", "test": "test.tsv"}


def read_wav_bytes(data, sample_rate=SAMPLE_RATE):
    """`read_wav` of a WAV file's bytes."""
    return read_wav(io.BytesIO(data), sample_rate, name="the WAV bytes")


def read_wav(path, sample_rate=SAMPLE_RATE, name=None):
    """float32 [samples] in [-1, 1] from a mono 16-bit PCM WAV file at `sample_rate` Hz (a path or a binary file
    object); a ValueError names the file and what it holds otherwise."""
    path = path if hasattr(path, "read") else str(path)
    name = name or path
    try:
        with wave.open(path, "rb") as f:
            channels, width, rate, count = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            frames = f.readframes(count)
    except (wave.Error, EOFError) as error:
        raise ValueError(f"{name} is not a readable PCM WAV file ({error}); expected 16 kHz mono 16-bit PCM") from error
    if (channels, width, rate) != (1, 2, sample_rate):
        raise ValueError(f"{name} holds {channels} channel(s) of {8 * width}-bit samples at {rate} Hz; expected 1 "
                         f"channel of 16-bit samples at {sample_rate} Hz")
    return np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0


def write_wav(path, audio, sample_rate=SAMPLE_RATE):
    """Writes float samples in [-1, 1] as a mono 16-bit PCM WAV file."""
    pcm = np.round(np.clip(np.asarray(audio, np.float64), -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(path if hasattr(path, "write") else str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())


def wav_bytes(audio, sample_rate=SAMPLE_RATE):
    """The bytes of a mono 16-bit PCM WAV file of float samples in [-1, 1] (what a client sends)."""
    buffer = io.BytesIO()
    write_wav(buffer, audio, sample_rate)
    return buffer.getvalue()


def read_manifest(data_dir, split):
    """[(path, transcript)] of DIR/<split's file>.tsv (MANIFESTS), paths made absolute; a missing manifest or audio
    file, a line without a tab or an empty transcript is a ValueError naming the file and line."""
    if split not in MANIFESTS:
        raise ValueError(f"unknown split {split!r}; expected one of {tuple(MANIFESTS)}")
    manifest = os.path.join(data_dir, MANIFESTS[split])
    if not os.path.isfile(manifest):
        raise ValueError(f"{manifest} does not exist; a speech --data_dir holds {sorted(MANIFESTS.values())}, lines "
                         "'path<TAB>transcript' with paths relative to the directory")
    entries = []
    with open(manifest, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            path, tab, transcript = line.partition("\t")
            where = f"{manifest} line {number}"
            if not tab:
                raise ValueError(f"{where} has no tab: expected 'path<TAB>transcript', got {line!r}")
            if not transcript.strip():
                raise ValueError(f"{where} has an empty transcript for {path!r}")
            full = os.path.join(data_dir, path)
            if not os.path.isfile(full):
                raise ValueError(f"{where} names {path!r}, and {full} does not exist")
            entries.append((full, " ".join(transcript.split())))
    if not entries:
        raise ValueError(f"{manifest} lists no utterances")
    return entries


def read_split(data_dir, split):
    """[Example] of a manifest's recordings (no alignments, speaker or SNR)."""
    return [Example(read_wav(path), text, (), None, None) for path, text in read_manifest(data_dir, split)]
