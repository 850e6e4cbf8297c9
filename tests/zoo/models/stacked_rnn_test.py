import keras
import numpy as np
import pytest

import zoo
from zoo.models.stacked_rnn.stacked_rnn_presets import STACKED_RNN_PRESETS
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization


def inputs(batch=4, time=7, features=3, seed=0):
    return np.random.default_rng(seed).uniform(0.1, 1.0, size=(batch, time, features)).astype("float32")


@pytest.mark.parametrize("preset", sorted(STACKED_RNN_PRESETS))
def test_every_preset_builds_and_round_trips(preset, tmp_path):
    model = zoo.models.get(preset, units=6, output_units=2, num_layers=2)
    y = keras.ops.convert_to_numpy(model(inputs()))
    assert y.shape == (4, 2)
    config = model.get_config()
    assert type(model).from_config(config).get_config() == config
    serialization.assert_keras_file_round_trip(model, inputs(), str(tmp_path / "m.keras"), atol=1e-6)


def test_saved_model_loads_in_both_loaders(tmp_path):
    model = zoo.models.get("gru", units=5, output_units=2, per_step_outputs=True, bidirectional=True)
    model(inputs())
    reference.randomize_weights(model)
    saved_model.assert_saved_model_round_trip(
        model,
        [inputs(2, 3, seed=1), inputs(5, 9, seed=2)],
        str(tmp_path / "export"),
        input_signature=[keras.InputSpec(shape=(None, None, 3), dtype="float32")],
    )


def test_padding_steps_are_masked():
    model = zoo.models.get("lstm", units=5)
    x = inputs()
    padded = np.concatenate([x, np.zeros((4, 3, 3), "float32")], axis=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(padded)), keras.ops.convert_to_numpy(model(x)), atol=1e-6
    )
    unmasked = zoo.models.get("lstm", units=5, mask_padding=False)
    unmasked(x)
    unmasked.set_weights(model.get_weights())
    assert not np.allclose(keras.ops.convert_to_numpy(unmasked(padded)), keras.ops.convert_to_numpy(model(x)))


def test_layers_and_read_out():
    model = zoo.models.get("leaky", units=4, num_layers=3, output_units=2, per_step_outputs=True)
    assert model(inputs()).shape == (4, 7, 2)
    assert [layer.name for layer in model.recurrent_layers] == ["leaky_0", "leaky_1", "leaky_2"]
    assert model.recurrent_layers[0].cell.trainable_alpha  # the preset's cell options reach every layer


def test_bad_names_and_arguments():
    with pytest.raises(ValueError, match=r"unknown model preset 'transformer'; valid presets: \[.*'elman', ") as raised:
        zoo.models.get("transformer")
    assert str(sorted(zoo.models.names())) in str(raised.value)  # every preset, sorted
    with pytest.raises(ValueError, match=r"model preset 'lstm' got unknown argument\(s\) \['hops'\]; valid arguments"):
        zoo.models.get("lstm", hops=3)
    with pytest.raises(ValueError, match=r"cell must be one of 'elman', 'jordan', 'leaky', 'lstm', 'gru', got 'rnn'"):
        zoo.models.StackedRNN(cell="rnn")
    with pytest.raises(ValueError, match=r"num_layers must be a positive int, got 0"):
        zoo.models.get("gru", num_layers=0)
