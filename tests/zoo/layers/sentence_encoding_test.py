import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import serialization
from zoo.layers.sentence_encoding import SentenceEncoding
from zoo.layers.sentence_encoding import position_encoding


def test_position_encoding_is_the_papers_formula():
    d, J = 4, 3
    expected = np.array([[(1 - j / J) - (k / d) * (1 - 2 * j / J) for k in range(1, d + 1)] for j in range(1, J + 1)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(position_encoding(np.ones((J,), bool), d)), expected,
                               atol=1e-6)
    # Padding words (anywhere) get zeros and do not count in j or J.
    padded = keras.ops.convert_to_numpy(position_encoding(np.array([True, False, True, True, False]), d))
    np.testing.assert_allclose(padded[[0, 2, 3]], expected, atol=1e-6)
    np.testing.assert_array_equal(padded[[1, 4]], 0.0)
    # An empty sentence is all zeros, never NaN.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(position_encoding(np.zeros((3,), bool), d)), 0.0)


def numpy_encode(x, mask, encoding):
    """Σ_j l_j · x_j over each sentence's valid words (x [..., J, d])."""
    d = x.shape[-1]
    flat_x, flat_mask = x.reshape(-1, *x.shape[-2:]), mask.reshape(-1, mask.shape[-1])
    out = np.zeros((len(flat_x), d))
    for s, (words, valid) in enumerate(zip(flat_x, flat_mask)):
        J = valid.sum()
        for j, word in enumerate(words[valid], start=1):
            l = np.array([(1 - j / J) - (k / d) * (1 - 2 * j / J) for k in range(1, d + 1)])
            out[s] += (l if encoding == "position" else 1.0) * word
    return out.reshape(*x.shape[:-2], d)


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 3, 5, 4)).astype("float32")  # [batch, memory, words, d]
    mask = rng.random((2, 3, 5)) < 0.7
    mask[0, 0] = False  # an empty sentence
    return x, mask


@pytest.mark.parametrize("encoding", ["bow", "position"])
def test_numpy_reference_and_masking(encoding):
    x, mask = data()
    layer = SentenceEncoding(encoding)
    y = keras.ops.convert_to_numpy(layer(x, word_mask=mask))
    np.testing.assert_allclose(y, numpy_encode(x, mask, encoding), atol=1e-5)
    # Garbage at the padding words and extra padding words change nothing.
    garbage = np.where(mask[..., None], x, 1e3).astype("float32")
    padded = np.concatenate([garbage, np.full((2, 3, 2, 4), 7.0, "float32")], axis=2)
    padded_mask = np.concatenate([mask, np.zeros((2, 3, 2), bool)], axis=2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(padded, word_mask=padded_mask)), y, atol=1e-5)
    # No mask: every word counts.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), numpy_encode(x, np.ones_like(mask), encoding),
                               atol=1e-5)


def test_position_encoding_depends_on_word_order():
    x, mask = data()
    mask[:] = True
    y = keras.ops.convert_to_numpy(SentenceEncoding("position")(x, word_mask=mask))
    y_reversed = keras.ops.convert_to_numpy(SentenceEncoding("position")(x[..., ::-1, :], word_mask=mask))
    assert not np.allclose(y, y_reversed)
    bow = SentenceEncoding("bow")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bow(x[..., ::-1, :])), keras.ops.convert_to_numpy(bow(x)),
                               atol=1e-5)


@pytest.mark.parametrize("encoding", ["bow", "position"])
def test_float64_gradients(encoding):
    backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
    import tensorflow as tf

    x, mask = data()
    layer = SentenceEncoding(encoding, dtype="float64")
    projection = tf.constant(np.random.default_rng(1).normal(size=(2, 3, 4)))
    theoretical, numerical = tf.test.compute_gradient(
        lambda x: tf.reduce_sum(layer(x, word_mask=mask) * projection), [tf.constant(x, tf.float64)]
    )
    assert np.any(theoretical[0] != 0)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)


def test_serialization_and_saved_model(tmp_path):
    from tests.helpers import saved_model

    serialization.assert_config_round_trip(SentenceEncoding("bow"))
    with pytest.raises(ValueError, match="encoding must be one of 'bow', 'position', got 'lstm'"):
        SentenceEncoding("lstm")
    x_in, mask_in = keras.Input((None, None, 4)), keras.Input((None, None), dtype="bool")
    model = keras.Model([x_in, mask_in], SentenceEncoding("position")(x_in, word_mask=mask_in))
    serialization.assert_keras_file_round_trip(model, list(data()), str(tmp_path / "encode.keras"))
    x2, mask2 = data(seed=1)
    saved_model.assert_saved_model_round_trip(model, [list(data()), [x2[:1, :2, :3], mask2[:1, :2, :3]]],
                                              str(tmp_path / "export"))
