"""Synthesized utterances, held-out voices, alignments, noise and manifests of recordings (`training.data.speech`)."""

import wave

import numpy as np
import pytest

from training.data import espeak
from training.data import speech

SIZES = {"train": 40, "validation": 12, "test": 12}


@pytest.fixture(scope="module")
def splits():
    return speech.speech_splits(SIZES, seed=3, workers=2)


def variant(example):
    return example.speaker.split("+", 1)[1]


def test_validation_and_test_voices_are_never_heard_in_training(splits):
    speakers = speech.speaker_splits(3)
    assert set(speakers["train"]).isdisjoint(speakers["validation"] + speakers["test"])
    assert set(speakers["validation"]).isdisjoint(speakers["test"])
    assert sorted(sum(speakers.values(), ())) == sorted(speech.variants())
    assert not set(speech.EXCLUDED_VARIANTS) & set(speech.variants())
    for name, examples in splits.items():
        assert {len(examples)} == {SIZES[name]}
        assert {variant(e) for e in examples} <= set(speakers[name])
    assert speech.speaker_splits(4) != speakers  # the seed draws the held-out voices


def test_utterances_are_digit_strings_or_commands_with_drawn_conditions(splits):
    examples = [e for split in splits.values() for e in split]
    for e in examples:
        words = e.text.split()
        assert set(words) <= set(speech.DIGITS) or (set(words) <= set(speech.COMMANDS) and len(words) <= 2)
        assert e.audio.dtype == np.float32 and np.abs(e.audio).max() <= 1.0
        assert e.speaker.split("+")[0] in speech.ACCENTS
    assert len({e.speaker for e in examples}) > 20 and len({e.text for e in examples}) > 50
    snrs = [e.snr_db for e in examples]
    assert None in snrs and all(s is None or speech.SNRS_DB[0] <= s <= speech.SNRS_DB[1] for s in snrs)


def test_an_utterance_depends_only_on_the_seed_its_split_and_its_place(splits):
    # The test split alone, one worker: the same samples as when it was drawn with the other splits on two (eSpeak's
    # own random generator seeded in every process: the module's note on determinism).
    again = speech.speech_splits({"test": SIZES["test"]}, seed=3, workers=1)["test"]
    for one, other in zip(splits["test"], again):
        assert one.text == other.text and one.words == other.words
        np.testing.assert_array_equal(one.audio, other.audio)
    other_seed = speech.speech_splits({"test": 3}, seed=4, workers=1)["test"]
    assert [e.text for e in other_seed] != [e.text for e in splits["test"][:3]]


def test_each_word_is_aligned_with_its_sound():
    spec = speech.draw_specs(1, ["m3"], np.random.default_rng(0), snr_db=None, kind="digits")[0]
    spec = spec._replace(text="one two three", word_gap=4, gain_db=0.0)
    example = speech.render_all([spec], workers=1)[0]
    assert [w[0] for w in example.words] == ["one", "two", "three"]
    edges = [edge for _, start, end in example.words for edge in (start, end)]
    assert edges == sorted(edges) and edges[0] >= 0 and edges[-1] <= len(example.audio)
    # Inside the words the clean signal is loud, between and around them (the gaps of 40 ms and more) near silent.
    inside = np.zeros(len(example.audio), bool)
    for _, start, end in example.words:
        assert (end - start) > 0.1 * speech.SAMPLE_RATE  # a spoken digit lasts over 100 ms
        inside[start:end] = True
    power = example.audio.astype(float) ** 2
    assert power[inside].mean() > 1000 * max(power[~inside].mean(), 1e-12)


def test_noise_is_added_at_the_stated_snr():
    # The speech's power is the words' (not the silences'): a louder word span and a quiet rest.
    rng = np.random.default_rng(1)
    audio = np.concatenate([0.3 * rng.standard_normal(4000), 0.01 * rng.standard_normal(2000)])
    words = (("one", 0, 2500), ("two", 2500, 4000))
    for colour in ("white", "pink"):
        added = speech.add_noise(audio, words, 10.0, colour, 7) - audio
        snr = 10 * np.log10(np.mean(audio[:4000] ** 2) / np.mean(added**2))
        assert abs(snr - 10.0) < 1e-9, (colour, snr)  # the noise has exactly unit power: no sampling error
        np.testing.assert_array_equal(added, speech.add_noise(audio, words, 10.0, colour, 7) - audio)  # seeded
    # Rendered: the stated SNR is kept with the example, and the clean one is scaled to its gain.
    clean = speech.draw_specs(1, ["f2"], rng, snr_db=None, kind="digits")[0]
    a, b = speech.render_all([clean._replace(gain_db=-6.0), clean._replace(snr_db=10.0, gain_db=-6.0)], workers=2,
                             chunk_size=1)
    assert b.snr_db == 10.0 and a.snr_db is None
    assert abs(np.abs(a.audio).max() - 10 ** (-6 / 20)) < 1e-3
    # Each from a fresh eSpeak, seeded: the noisy one's speech is the clean one's, so the difference is the noise.
    added = b.audio.astype(float) - a.audio
    voiced = np.concatenate([a.audio[start:end] for _, start, end in a.words]).astype(float)
    assert abs(10 * np.log10(np.mean(voiced**2) / np.mean(added**2)) - 10.0) < 0.01


def test_pink_noise_has_its_power_in_the_low_frequencies():
    rng = np.random.default_rng(0)
    for colour, low_share in (("white", (0.05, 0.15)), ("pink", (0.5, 1.0))):
        x = speech.noise(colour, 16000, rng)
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        share = spectrum[: len(spectrum) // 10].sum() / spectrum.sum()  # below 800 Hz of 8 kHz
        assert low_share[0] < share < low_share[1], (colour, share)
        assert abs(np.mean(x**2) - 1) < 1e-9
    with pytest.raises(ValueError, match="noise must be 'white' or 'pink', got 'brown'"):
        speech.noise("brown", 10, rng)


def test_frame_labels_give_each_frame_the_word_at_its_centre():
    words = (("one", 100, 400), ("stop", 500, 900))
    labels = speech.frame_labels(words, num_frames=10, hop=100, vocabulary={"one": 3, "stop": 7})
    # Frame centres 50, 150, ..., 950.
    np.testing.assert_array_equal(labels, [0, 3, 3, 3, 0, 7, 7, 7, 7, 0])


def test_resampling_keeps_a_tone_at_its_frequency():
    t = np.arange(espeak.SAMPLE_RATE) / espeak.SAMPLE_RATE
    resampled = speech.resample(np.sin(2 * np.pi * 440 * t), espeak.SAMPLE_RATE)
    assert len(resampled) == speech.SAMPLE_RATE
    assert np.argmax(np.abs(np.fft.rfft(resampled))) == 440  # 1 Hz bins over one second


def test_draw_specs_checks_its_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="speakers must name at least one voice variant"):
        speech.draw_specs(1, [], rng)
    with pytest.raises(ValueError, match="kind must be 'digits', 'commands' or None, got 'letters'"):
        speech.draw_specs(1, ["m1"], rng, kind="letters")
    with pytest.raises(ValueError, match=r"unknown split 'dev'; expected one of \('train', 'validation', 'test'\)"):
        speech.speech_splits({"dev": 1}, seed=0)
    specs = speech.draw_specs(20, ["m1"], rng, snr_db=15, kind="commands")
    assert {s.snr_db for s in specs} == {15.0} and all(set(s.text.split()) <= set(speech.COMMANDS) for s in specs)


# Recordings.


def write_corpus(root, lines, audio=None):
    audio = np.sin(np.linspace(0, 200, 8000)).astype(np.float32) * 0.5 if audio is None else audio
    for name in ("a.wav", "b.wav"):
        speech.write_wav(root / name, audio)
    for manifest in ("train.tsv", "valid.tsv", "test.tsv"):
        (root / manifest).write_text(lines)
    return audio


def test_a_manifest_s_recordings_are_read_with_their_transcripts(tmp_path):
    audio = write_corpus(tmp_path, "a.wav\tseven  three\nb.wav\tstop\n\n")
    examples = speech.read_split(str(tmp_path), "validation")
    assert [e.text for e in examples] == ["seven three", "stop"]
    np.testing.assert_allclose(examples[0].audio, audio, atol=1 / 32767)


@pytest.mark.parametrize(
    "lines, message",
    [
        ("a.wav seven\n", r"valid.tsv line 1 has no tab: expected 'path<TAB>transcript', got 'a.wav seven'"),
        ("a.wav\tone\nb.wav\t  \n", r"valid.tsv line 2 has an empty transcript for 'b.wav'"),
        ("c.wav\tone\n", r"valid.tsv line 1 names 'c.wav', and .*c.wav does not exist"),
        ("\n", r"valid.tsv lists no utterances"),
    ],
)
def test_a_bad_manifest_is_an_error_naming_the_file_and_line(tmp_path, lines, message):
    write_corpus(tmp_path, lines)
    with pytest.raises(ValueError, match=message):
        speech.read_manifest(str(tmp_path), "validation")


def test_a_missing_manifest_or_split_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"train.tsv does not exist; a speech --data_dir holds"):
        speech.read_manifest(str(tmp_path), "train")
    with pytest.raises(ValueError, match=r"unknown split 'dev'"):
        speech.read_manifest(str(tmp_path), "dev")


def test_a_recording_that_is_not_16_khz_mono_pcm_is_an_error_naming_it(tmp_path):
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as f:
        f.setnchannels(2), f.setsampwidth(2), f.setframerate(16000), f.writeframes(b"\0" * 400)
    with pytest.raises(ValueError, match=r"stereo.wav holds 2 channel\(s\) of 16-bit samples at 16000 Hz; expected 1"):
        speech.read_wav(stereo)
    slow = tmp_path / "slow.wav"
    speech.write_wav(slow, np.zeros(80), sample_rate=8000)
    with pytest.raises(ValueError, match=r"slow.wav holds 1 channel\(s\) of 16-bit samples at 8000 Hz"):
        speech.read_wav(slow)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match=r"junk.wav is not a readable PCM WAV file"):
        speech.read_wav(junk)
