import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from zoo.layers.temporal_encoding import TemporalEncoding
from zoo.layers.temporal_encoding import temporal_indices

MEMORY, DIM = 6, 3


def test_ages_count_back_from_the_most_recent_sentence():
    mask = np.array([[True, True, True, False, False],   # trailing padding
                     [False, True, False, True, True],   # leading padding and an empty slot that counts as time
                     [True, False, False, False, False]])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(temporal_indices(mask)),
                                  [[2, 1, 0, 0, 0], [4, 3, 2, 1, 0], [0, 0, 0, 0, 0]])


def make(dtype=None):
    layer = TemporalEncoding(MEMORY, dtype=dtype)
    layer.build((None, MEMORY, DIM))
    reference.randomize_weights(layer)
    return layer


def data(slots=5, seed=0):
    rng = np.random.default_rng(seed)
    memories = rng.normal(size=(2, slots, DIM)).astype("float32")
    mask = np.ones((2, slots), bool)
    mask[0, 3:] = False
    mask[1, 1] = False
    return memories, mask


def test_numpy_reference_and_masking():
    layer = make()
    memories, mask = data()
    T = keras.ops.convert_to_numpy(layer.temporal)
    expected = memories.copy()
    for b in range(2):
        last = np.nonzero(mask[b])[0].max()
        for i in range(last + 1):
            expected[b, i] += T[last - i]
    y = keras.ops.convert_to_numpy(layer(memories, slot_mask=mask))
    np.testing.assert_allclose(y[mask], expected[mask], atol=1e-6)
    # Trailing padding slots change no valid slot.
    more = np.concatenate([memories, np.full((2, 1, DIM), 5.0, "float32")], axis=1)
    more_mask = np.concatenate([mask, np.zeros((2, 1), bool)], axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(more, slot_mask=more_mask))[:, :5][mask], y[mask])


def test_float64_gradients():
    backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
    import tensorflow as tf

    layer = make("float64")
    memories, mask = data()
    projection = tf.constant(np.random.default_rng(1).normal(size=memories.shape))

    def scalar(memories, temporal):
        y, _ = layer.stateless_call([temporal], [], memories, slot_mask=mask)
        return tf.reduce_sum(y * projection)

    args = [tf.constant(memories, tf.float64), tf.constant(keras.ops.convert_to_numpy(layer.temporal))]
    theoretical, numerical = tf.test.compute_gradient(scalar, args)
    for name, t, n in zip(["memories", "temporal"], theoretical, numerical):
        assert np.any(t != 0), name
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-6, err_msg=name)


def test_errors_serialization_and_saved_model(tmp_path):
    with pytest.raises(ValueError, match="memory_size must be a positive int, got 0"):
        TemporalEncoding(0)
    with pytest.raises(ValueError, match="has 6 rows .* 7 slots; expected at most 6"):
        TemporalEncoding(MEMORY)(np.zeros((1, 7, DIM), "float32"))
    serialization.assert_config_round_trip(TemporalEncoding(MEMORY))
    memories_in, mask_in = keras.Input((None, DIM)), keras.Input((None,), dtype="bool")
    layer = TemporalEncoding(MEMORY)
    model = keras.Model([memories_in, mask_in], layer(memories_in, slot_mask=mask_in))
    reference.randomize_weights(layer)
    serialization.assert_keras_file_round_trip(model, list(data()), str(tmp_path / "temporal.keras"))
    saved_model.assert_saved_model_round_trip(model, [list(data()), list(data(slots=3, seed=1))],
                                              str(tmp_path / "export"))
