"""Serialization checks: config round trip and `.keras` file round trip."""

import keras
import numpy as np


def assert_config_round_trip(layer):
    """`get_config` -> `from_config` -> the same config, and the registered name deserializes to the same class."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].startswith("zoo>"), serialized["registered_name"]
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(layer)
    assert revived.get_config() == config


def assert_keras_file_round_trip(model, x, path, atol=1e-6):
    """Saves `model` to a `.keras` file, loads it by registered names only, and compares outputs on `x`."""
    expected = keras.ops.convert_to_numpy(model(x))
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), expected, atol=atol)
    assert [(w.name, tuple(w.shape)) for w in loaded.weights] == [(w.name, tuple(w.shape)) for w in model.weights]
    return loaded
