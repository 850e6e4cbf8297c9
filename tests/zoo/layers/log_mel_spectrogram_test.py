import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import saved_model
from tests.helpers import serialization
from zoo.layers.log_mel_spectrogram import LogMelSpectrogram
from zoo.layers.log_mel_spectrogram import mel_filterbank

RATE = 16000


def audio(batch=2, samples=4000, seed=0):
    """A chirp with noise: energy that moves across the spectrum."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    chirp = np.sin(2 * np.pi * (200 + 2000 * t) * t)
    return (0.5 * chirp + 0.1 * rng.normal(size=(batch, samples))).astype("float32")


def numpy_log_mel(x, frame_length=400, frame_step=160, bins=80, normalize=True, lengths=None):
    """The layer's equations in NumPy: periodic Hann window, DFT of frame_length, power, mel filters, log, and the
    per-utterance standardization over each row's real frames."""
    n = np.arange(frame_length)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / frame_length)
    frames = 1 + (x.shape[1] - frame_length) // frame_step
    filters = mel_filterbank(bins, frame_length // 2 + 1, RATE, 20.0, RATE / 2)
    out = np.zeros((x.shape[0], frames, bins))
    for b in range(x.shape[0]):
        length = x.shape[1] if lengths is None else lengths[b]
        real = max(0, 1 + (length - frame_length) // frame_step) if length >= frame_length else 0
        for f in range(real):
            spectrum = np.fft.rfft(window * x[b, f * frame_step : f * frame_step + frame_length].astype(np.float64))
            out[b, f] = np.log(np.abs(spectrum) ** 2 @ filters + 1e-6)
        if normalize and real:
            rows = out[b, :real]
            out[b, :real] = (rows - rows.mean(0)) / np.sqrt(rows.var(0) + 1e-5)
    return out


@pytest.mark.parametrize("normalize", [pytest.param(True, marks=pytest.mark.jax), False])
def test_matches_the_numpy_reference(normalize):
    x = audio()
    y = keras.ops.convert_to_numpy(LogMelSpectrogram(normalize=normalize)(x))
    assert y.shape == (2, 1 + (4000 - 400) // 160, 80)
    np.testing.assert_allclose(y, numpy_log_mel(x, normalize=normalize), atol=2e-3 if normalize else 1e-3, rtol=1e-4)


def test_matches_tensorflow_s_signal_ops():
    backend.skip_unless_tensorflow("tf.signal")
    import tensorflow as tf

    x = audio()
    stft = tf.signal.stft(x, 400, 160, 400, window_fn=tf.signal.hann_window)
    matrix = tf.signal.linear_to_mel_weight_matrix(80, 201, RATE, 20.0, RATE / 2)
    # TensorFlow builds the matrix in float32: equal up to its rounding.
    np.testing.assert_allclose(mel_filterbank(80, 201, RATE, 20.0, RATE / 2), matrix.numpy(), atol=5e-5)
    expected = tf.math.log(tf.matmul(tf.abs(stft) ** 2, matrix) + 1e-6).numpy()
    y = keras.ops.convert_to_numpy(LogMelSpectrogram(normalize=False)(x))
    np.testing.assert_allclose(y, expected, atol=1e-3, rtol=1e-4)


@pytest.mark.jax
def test_padding_past_a_row_s_end_changes_nothing_and_is_masked():
    x = audio(samples=3000)
    lengths = np.array([3000, 2100])
    padded = np.concatenate([x, np.full((2, 900), 0.7, "float32")], axis=1)
    padded[1, 2100:] = 0.7  # garbage after row 1's end
    mask = np.arange(3900)[None, :] < lengths[:, None]
    layer = LogMelSpectrogram()
    y = keras.ops.convert_to_numpy(layer(padded, mask=mask))
    expected = numpy_log_mel(padded, lengths=lengths)
    np.testing.assert_allclose(y, expected, atol=2e-3, rtol=1e-4)
    frames = keras.ops.convert_to_numpy(layer.frame_lengths(lengths))
    np.testing.assert_array_equal(frames, [1 + (3000 - 400) // 160, 1 + (2100 - 400) // 160])
    assert np.all(y[1, frames[1]:] == 0)
    # Row 0 alone, unpadded, gives its own frames: the padding is not in its statistics.
    alone = keras.ops.convert_to_numpy(layer(x[:1]))
    np.testing.assert_allclose(y[0, : frames[0]], alone[0], atol=1e-4)
    computed_mask = keras.ops.convert_to_numpy(layer.compute_mask(padded, mask))
    np.testing.assert_array_equal(computed_mask, np.arange(y.shape[1])[None, :] < frames[:, None])
    by_lengths = keras.ops.convert_to_numpy(layer(padded, lengths=lengths))
    np.testing.assert_allclose(by_lengths, y, atol=1e-6)


def test_normalized_features_ignore_the_gain():
    # A gain of 1/4 shifts every log-power by ln(1/16); the standardization takes the shift out (up to log_offset,
    # negligible at this signal's power).
    x = audio()
    for normalize, close in ((True, True), (False, False)):
        layer = LogMelSpectrogram(normalize=normalize)
        quiet, loud = (keras.ops.convert_to_numpy(layer(gain * x)) for gain in (0.25, 1.0))
        assert np.allclose(quiet, loud, atol=5e-3) == close


def test_a_signal_shorter_than_a_frame_gives_one_masked_frame():
    layer = LogMelSpectrogram()
    y = keras.ops.convert_to_numpy(layer(audio(samples=300), lengths=np.array([300, 300])))
    assert y.shape == (2, 1, 80) and np.all(y == 0)


def test_runs_compiled_with_xla():
    layer = LogMelSpectrogram()
    x = audio()
    compiled = backend.xla_compiled(lambda a: layer(a), input_specs=[((None, None), "float32")])
    np.testing.assert_allclose(compiled(x), keras.ops.convert_to_numpy(layer(x)), atol=1e-4)


def test_config_keras_file_and_saved_model_round_trips(tmp_path):
    layer = LogMelSpectrogram(num_mel_bins=40, frame_step=200, upper_edge_hertz=7600.0, name="front")
    serialization.assert_config_round_trip(layer)
    model = keras.Sequential([keras.Input((None,)), layer])
    serialization.assert_keras_file_round_trip(model, audio(), str(tmp_path / "m.keras"), atol=1e-5)
    saved_model.assert_saved_model_round_trip(
        model, [audio(2, 4000), audio(3, 5200, seed=1)], str(tmp_path / "saved"), atol=1e-3,
        input_signature=[keras.InputSpec(shape=(None, None), dtype="float32")],
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"frame_length": 0}, "frame_length must be a positive int, got 0"),
        ({"num_mel_bins": 2.5}, "num_mel_bins must be a positive int, got 2.5"),
        ({"lower_edge_hertz": 9000.0}, r"0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2 \(8000\)"),
        ({"upper_edge_hertz": 9000.0}, r"got lower_edge_hertz=20.0, upper_edge_hertz=9000.0"),
        ({"log_offset": 0.0}, "log_offset must be a positive float, got 0.0"),
        ({"normalize": "yes"}, "normalize must be True or False, got 'yes'"),
    ],
)
def test_bad_arguments_say_what_was_expected(arguments, message):
    with pytest.raises(ValueError, match=message):
        LogMelSpectrogram(**arguments)


def test_audio_of_the_wrong_rank_is_an_error_naming_the_shape():
    with pytest.raises(ValueError, match=r"LogMelSpectrogram takes audio \[batch, samples\], got shape \(2, 100, 1\)"):
        LogMelSpectrogram()(np.zeros((2, 100, 1), "float32"))
