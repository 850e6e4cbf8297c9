"""eSpeak NG through its C API: samples, word events, parameters and errors (`training.data.espeak`)."""

import numpy as np
import pytest

from training.data import espeak

VOICE = espeak.Voice("en-us", "m3")


def test_speaks_every_word_and_says_where_each_starts():
    audio, words = espeak.synthesize("seven three nine", VOICE)
    assert audio.dtype == np.int16 and 0.5 * espeak.SAMPLE_RATE < len(audio) < 3 * espeak.SAMPLE_RATE
    assert [w.text for w in words] == ["seven", "three", "nine"]
    starts = [w.start for w in words]
    assert starts == sorted(starts) and starts[-1] < len(audio) and len(set(starts)) == 3
    # Sound, not silence: a formant synthesizer at its default volume peaks well above a tenth of full scale.
    assert np.abs(audio).max() > 3000


def test_rate_and_word_gap_change_the_timing():
    fast, _ = espeak.synthesize("one two three four", VOICE, rate=300)
    slow, _ = espeak.synthesize("one two three four", VOICE, rate=100)
    gapped, words = espeak.synthesize("one two three four", VOICE, rate=300, word_gap=30)
    assert len(slow) > 1.8 * len(fast)
    # Three gaps of 300 ms each at least (the gap's unit is 10 ms at the default rate, shorter when faster).
    assert len(gapped) - len(fast) > 3 * 0.1 * espeak.SAMPLE_RATE


def test_the_variant_and_the_pitch_change_the_voice():
    def pitch_hz(audio):
        # The strongest autocorrelation lag between 2.5 and 20 ms of the loudest 100 ms: the voice's pitch period.
        loudest = np.argmax(np.convolve(audio.astype(float) ** 2, np.ones(2205), mode="same"))
        x = audio[max(loudest - 1100, 0) : loudest + 1100].astype(float)
        x -= x.mean()
        correlation = np.correlate(x, x, mode="full")[len(x) - 1 :]
        low, high = espeak.SAMPLE_RATE // 400, espeak.SAMPLE_RATE // 50
        return espeak.SAMPLE_RATE / (low + np.argmax(correlation[low:high]))

    low = pitch_hz(espeak.synthesize("nine", VOICE, pitch=10, pitch_range=0)[0])
    high = pitch_hz(espeak.synthesize("nine", VOICE, pitch=90, pitch_range=0)[0])
    assert high > 1.3 * low, (low, high)
    other, _ = espeak.synthesize("nine", espeak.Voice("en-us", "f2"), pitch=10, pitch_range=0)
    assert pitch_hz(other) > 1.3 * low  # a female variant speaks higher at the same setting


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("", VOICE), "text must be a non-empty string"),
        (("one", ("en-us", "m3")), r"voice must be a Voice\(language, variant\)"),
        (("one", espeak.Voice("en-us", "nobody")), r"eSpeak NG has no voice 'en-us\+nobody'.*'m3'"),
        (("one", espeak.Voice("xx-yy", "m3")), r"eSpeak NG has no voice 'xx-yy\+m3'"),
        (("one", VOICE, 79), r"rate must be an int in \[80, 450\], got 79"),
        (("one", VOICE, 175, 101), r"pitch must be an int in \[0, 100\], got 101"),
        (("one", VOICE, 175, 50, 50.5), r"pitch_range must be an int in \[0, 100\], got 50.5"),
        (("one", VOICE, 175, 50, 50, -1), r"word_gap must be an int in \[0, 50\], got -1"),
    ],
)
def test_bad_arguments_name_what_was_expected(arguments, message):
    with pytest.raises(ValueError, match=message):
        espeak.synthesize(*arguments)


def test_the_variants_are_eSpeak_s_own():
    names = espeak.variants()
    assert {"m1", "f1", "klatt"} <= set(names) and len(names) > 50 and names == sorted(names)
