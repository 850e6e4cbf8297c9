import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from zoo.models.forecaster.forecaster import Forecaster
from zoo.models.forecaster.forecaster import residual_forecast
from zoo.models.forecaster.forecaster_presets import FORECASTER_PRESETS

FEATURES, HORIZON = 3, 4
CELLS = ("elman", "jordan", "leaky", "lstm", "gru")


def series(batch=4, time=9, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, FEATURES)).astype("float32")


def forecaster(seed=0, **overrides):
    """A built forecaster with random weights (the read-out too, so it is not the naive forecast)."""
    model = Forecaster(**(dict(features=FEATURES, horizon=HORIZON, units=5) | overrides))
    model.build((None, None, FEATURES))
    reference.randomize_weights(model, seed=seed, ranges={"alpha": (0.05, 1.0)})  # leak rates live in (0, 1]
    return model


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def encoded_by_hand(model, x):
    """h^(L)_T: every layer's cell stepped by hand in a Python loop."""
    h = x
    for layer in model.recurrent_layers:
        h, _ = reference.unroll(reference.cell_step(layer.cell), h, layer.cell.get_initial_state(len(x)))
    return h[:, -1]


@pytest.mark.parametrize("cell", CELLS)
def test_equals_the_read_out_and_residual_in_numpy(cell):
    """x^_{T+k} = x_T + (h_T W_d + b_d)[(k-1) F : k F]."""
    model = forecaster(cell=cell, num_layers=2)
    x = series()
    kernel, bias = numpy(model.readout.kernel), numpy(model.readout.bias)
    assert kernel.shape == (5, HORIZON * FEATURES)
    delta = encoded_by_hand(model, x) @ kernel + bias
    expected = np.empty((4, HORIZON, FEATURES), "float32")
    for k in range(HORIZON):
        expected[:, k] = x[:, -1] + delta[:, k * FEATURES : (k + 1) * FEATURES]
    forecast = numpy(model(x))
    assert forecast.shape == (4, HORIZON, FEATURES)
    np.testing.assert_allclose(forecast, expected, atol=1e-5)


def test_residual_forecast():
    delta = np.arange(12, dtype="float32").reshape(2, 6)  # horizon 3, features 2
    last = np.array([[100.0, 200.0], [300.0, 400.0]], "float32")
    np.testing.assert_allclose(
        numpy(residual_forecast(delta, last)),
        [[[100, 201], [102, 203], [104, 205]], [[306, 407], [308, 409], [310, 411]]],
    )


def test_zero_read_out_is_the_naive_last_value_forecast():
    x = series()
    naive = np.repeat(x[:, -1:], HORIZON, axis=1)
    # A fresh model starts with a zero read-out.
    fresh = Forecaster(FEATURES, HORIZON, cell="gru", units=5)
    np.testing.assert_array_equal(numpy(fresh(x)), naive)
    # Any encoder, any input length: zeroing W_d and b_d gives the naive forecast exactly.
    model = forecaster(cell="lstm", num_layers=2)
    assert not np.allclose(numpy(model(x)), naive, atol=1e-3)
    model.readout.kernel.assign(np.zeros(model.readout.kernel.shape, "float32"))
    model.readout.bias.assign(np.zeros(model.readout.bias.shape, "float32"))
    np.testing.assert_array_equal(numpy(model(x)), naive)
    np.testing.assert_array_equal(numpy(model(x[:, :2])), np.repeat(x[:, 1:2], HORIZON, axis=1))


def test_zero_is_not_padding():
    """A scaled series is zero at its mean: zero steps are data, not masked."""
    model = forecaster()
    x = series()
    zeroed = x.copy()
    zeroed[:, -3:-1] = 0.0
    assert not np.allclose(numpy(model(zeroed)), numpy(model(x)), atol=1e-4)
    # Stepping every step by hand, with no mask, gives the model's forecast.
    delta = encoded_by_hand(model, zeroed) @ numpy(model.readout.kernel) + numpy(model.readout.bias)
    expected = zeroed[:, -1:] + delta.reshape(4, HORIZON, FEATURES)
    np.testing.assert_allclose(numpy(model(zeroed)), expected, atol=1e-5)


def test_dropout_acts_only_in_training():
    model = forecaster(dropout=0.5, num_layers=2)
    plain = forecaster(num_layers=2)
    plain.set_weights(model.get_weights())
    x = series()
    np.testing.assert_allclose(numpy(model(x)), numpy(plain(x)), atol=1e-6)
    assert not np.allclose(numpy(model(x, training=True)), numpy(plain(x)), atol=1e-3)


def test_training_improves_on_the_naive_forecast():
    """Three noisy sinusoids (periods 12, 12, 6): the naive forecast misses everything that changes in 4 steps.

    On the held-out end of the series the naive mean squared error is about 1.0; the noise (std 0.05) puts the floor
    near 0.0025. The trained model reached 0.005 (seed 0, two epochs of 93 steps); it must be ten times better than
    naive, which a model that ignored its input or lost the residual (about 0.5 for the mean forecast) cannot be.
    """
    rng = np.random.default_rng(0)
    t = np.arange(3500)
    values = np.stack([np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 12), np.sin(2 * np.pi * t / 6)], -1)
    values = (values + rng.normal(scale=0.05, size=values.shape)).astype("float32")

    def windows(part):
        index = np.arange(24)[None, :] + np.arange(len(part) - 24 - HORIZON + 1)[:, None]
        return part[index], part[index[:, -1:] + 1 + np.arange(HORIZON)]

    (inputs, targets), (test_inputs, test_targets) = windows(values[:3000]), windows(values[3000:])
    keras.utils.set_random_seed(0)
    model = Forecaster(FEATURES, HORIZON, cell="gru", units=16)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(inputs, targets, batch_size=32, epochs=2, verbose=0)
    naive = np.mean((np.repeat(test_inputs[:, -1:], HORIZON, axis=1) - test_targets) ** 2)
    trained = np.mean((numpy(model(test_inputs)) - test_targets) ** 2)
    assert naive > 0.5
    assert trained < naive / 10, (trained, naive)


def test_jit_compile():
    model = forecaster(cell="lstm", num_layers=2)
    x = series()
    compiled = tf.function(lambda x: model(x), jit_compile=True)
    np.testing.assert_allclose(compiled(tf.constant(x)).numpy(), numpy(model(x)), atol=1e-5)
    losses = []
    for jit in (False, True):
        fresh = forecaster(cell="gru")
        fresh.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit)
        losses.append(fresh.train_on_batch(x, np.zeros((4, HORIZON, FEATURES), "float32")))
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)


def test_config_round_trip_and_presets():
    for name, preset in FORECASTER_PRESETS.items():
        assert not {"features", "horizon"} & set(preset), f"{name} holds sizes that come from the data"
        model = Forecaster(features=FEATURES, horizon=HORIZON, **preset)
        serialization.assert_config_round_trip(model)
        assert numpy(model(series())).shape == (4, HORIZON, FEATURES)
    model = Forecaster(2, 5, cell="leaky", units=7, num_layers=3, dropout=0.25, cell_options={"alpha": 0.3})
    serialization.assert_config_round_trip(model)
    config = model.get_config()
    expected = dict(features=2, horizon=5, cell="leaky", units=7, num_layers=3, dropout=0.25, cell_options={"alpha": 0.3})
    assert {key: config[key] for key in expected} == expected


def test_keras_file_round_trip(tmp_path):
    model = forecaster(cell="gru", num_layers=2)
    serialization.assert_keras_file_round_trip(model, series(), str(tmp_path / "m.keras"), atol=1e-6)


def test_saved_model_round_trip(tmp_path):
    model = forecaster(cell="lstm", num_layers=2)
    saved_model.assert_saved_model_round_trip(
        model,
        [series(batch=2, time=3, seed=1), series(batch=5, time=11, seed=2)],
        str(tmp_path / "export"),
        input_signature=[keras.InputSpec(shape=(None, None, FEATURES), dtype="float32")],
    )
    signature = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, None, FEATURES]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"features must be a positive int, got 0"):
        Forecaster(0, HORIZON)
    with pytest.raises(ValueError, match=r"horizon must be a positive int, got 2.5"):
        Forecaster(FEATURES, 2.5)
    with pytest.raises(ValueError, match=r"cell must be one of 'elman', 'jordan', 'leaky', 'lstm', 'gru', got 'rnn'"):
        Forecaster(FEATURES, HORIZON, cell="rnn")
    with pytest.raises(ValueError, match=r"num_layers must be a positive int, got 0"):
        Forecaster(FEATURES, HORIZON, num_layers=0)
    with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\), got -0.1"):
        Forecaster(FEATURES, HORIZON, dropout=-0.1)
    with pytest.raises(ValueError, match=r"cell_options must be a dict"):
        Forecaster(FEATURES, HORIZON, cell_options=["peepholes"])
    with pytest.raises(ValueError, match=r"LSTM got unknown argument\(s\) \['hops'\]"):
        Forecaster(FEATURES, HORIZON, cell_options={"hops": 2})


def test_bad_inputs():
    model = Forecaster(FEATURES, HORIZON)
    with pytest.raises(ValueError, match=r"Forecaster\(features=3\) expects inputs of shape \(batch, time, 3\), got"):
        model(np.zeros((2, 5, FEATURES + 1), "float32"))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, time, 3\), got shape \(2, 5\)"):
        Forecaster(FEATURES, HORIZON)(np.zeros((2, 5), "float32"))
