import keras
import numpy as np
import pytest

import zoo
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from zoo.models.ntm.ntm_presets import NTM_PRESETS

SMALL = {"memory_size": 6, "memory_width": 4, "controller_units": 5}


def inputs(batch=3, time=5, features=3, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(batch, time, features)).astype("float32")


def make(seed=0, **config):
    model = zoo.models.NTM(**{"output_units": 2, **SMALL, **config})
    model(inputs())
    reference.randomize_weights(model, seed=seed)
    return model


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("preset", sorted(NTM_PRESETS))
def test_every_preset_builds_and_round_trips(preset, tmp_path):
    model = zoo.models.get(preset, output_units=2, **SMALL)
    assert numpy_of(model(inputs())).shape == (3, 5, 2)
    config = model.get_config()
    assert type(model).from_config(config).get_config() == config
    serialization.assert_keras_file_round_trip(model, inputs(), str(tmp_path / "m.keras"), atol=1e-6)


def test_the_presets_are_collier_and_beels_configuration():
    # Collier & Beel (2018), the code's defaults: LSTM controller of 100 units, 1 read and 1 write head, 128 x 20
    # memory, shifts -1..1, clipping at 20, memory initialised to 1e-6.
    cell = zoo.models.get("ntm_copy", output_units=8).cell
    assert (cell.controller_type, cell.controller_units, cell.read_heads, cell.write_heads) == ("lstm", 100, 1, 1)
    assert (cell.memory_size, cell.memory_width, cell.shift_range) == (128, 20, 1)
    assert (cell.clip_value, cell.memory_init) == (20.0, 1e-6)
    assert zoo.models.get("ntm_priority_sort", output_units=8).cell.read_heads == 5  # Graves et al. Table 3


def test_the_model_is_the_cell_stepped_over_time_and_trace_reports_every_step():
    model = make(output_activation="sigmoid", read_heads=2)
    x = inputs(time=6)
    y = numpy_of(model(x))
    trace = {key: numpy_of(value) for key, value in model.trace(x).items()}
    np.testing.assert_allclose(trace["outputs"], y, atol=1e-6)
    # The cell by hand: its initial state, one step at a time, the sigmoid on its (linear) output.
    states = model.cell.get_initial_state(3)
    for t in range(6):
        output, states = model.cell(x[:, t], states)
        np.testing.assert_allclose(1 / (1 + np.exp(-numpy_of(output))), y[:, t], atol=1e-6)
        unpacked = model.cell.unpack_state(states)
        for key in ("read_weightings", "write_weightings", "reads", "memory"):
            np.testing.assert_allclose(trace[key][:, t], numpy_of(unpacked[key]), atol=1e-6)
    assert trace["read_weightings"].shape == (3, 6, 2, 6) and trace["memory"].shape == (3, 6, 6, 4)
    np.testing.assert_allclose(trace["write_weightings"].sum(-1), 1.0, atol=1e-5)


def test_the_last_step_read_out_and_padding_masks():
    model = make()
    x = inputs()
    last = zoo.models.NTM(output_units=2, per_step_outputs=False, **SMALL)
    last(x)
    last.set_weights(model.get_weights())
    np.testing.assert_allclose(numpy_of(last(x)), numpy_of(model(x))[:, -1], atol=1e-6)
    # Trailing all-zero steps: run through by default (the answer steps of the copy task are all-zero inputs) ...
    padded = np.concatenate([x, np.zeros((3, 2, 3), "float32")], axis=1)
    assert not np.allclose(numpy_of(model(padded))[:, -1], numpy_of(model(x))[:, -1], atol=1e-4)
    # ... and skipped, the state and output kept, with mask_padding.
    masked = zoo.models.NTM(output_units=2, mask_padding=True, **SMALL)
    masked(x)
    masked.set_weights(model.get_weights())
    np.testing.assert_allclose(numpy_of(masked(padded))[:, -1], numpy_of(model(x))[:, -1], atol=1e-6)


def test_saved_model_loads_in_both_loaders(tmp_path):
    model = make(controller="dense", write_heads=2)
    saved_model.assert_saved_model_round_trip(
        model,
        [inputs(2, 3, seed=1), inputs(5, 9, seed=2)],
        str(tmp_path / "export"),
        input_signature=[keras.InputSpec(shape=(None, None, 3), dtype="float32")],
    )


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match=r"output_units must be a positive int, got 0"):
        zoo.models.NTM(output_units=0)
    with pytest.raises(ValueError, match=r"controller must be one of 'lstm', 'dense', got 'gru'"):
        zoo.models.get("ntm_copy", controller="gru")
    with pytest.raises(ValueError, match=r"model preset 'ntm_copy' got unknown argument\(s\) \['units'\]"):
        zoo.models.get("ntm_copy", units=3)
