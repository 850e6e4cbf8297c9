import keras
import numpy as np
import pytest

from tests.helpers import serialization
from tests.helpers.cell_contract import CellContract
from zoo.cells import LSTMCell


# 5 units with peepholes, 3 input features (also the zoo.rnn.LSTM test's configuration).
PEEPHOLE_LSTM_WEIGHTS = {
    "kernel": (3, 20),
    "recurrent_kernel": (5, 20),
    "bias": (20,),
    "peephole_input": (5,),
    "peephole_forget": (5,),
    "peephole_output": (5,),
}


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class TestLSTMCell(CellContract):
    cell_class = LSTMCell
    configs = ({"units": 5, "peepholes": True}, {"units": 5})

    def expected_weights(self):
        return PEEPHOLE_LSTM_WEIGHTS

    def numpy_step(self, config, w, x, states, recurrent_mask=1.0):
        # The lecture's equations, gate by gate (Keras order i, f, c, o in the fused weights).
        h, c = states
        h_in = recurrent_mask * h  # recurrent dropout acts where h_{t-1} enters the products
        U = dict(zip("ifco", np.split(w["kernel"], 4, axis=1)))
        W = dict(zip("ifco", np.split(w["recurrent_kernel"], 4, axis=1)))
        b = dict(zip("ifco", np.split(w["bias"], 4)))
        V = {gate: w.get(f"peephole_{name}", 0.0) for gate, name in (("i", "input"), ("f", "forget"), ("o", "output"))}
        i = _sigmoid(h_in @ W["i"] + x @ U["i"] + V["i"] * c + b["i"])
        f = _sigmoid(h_in @ W["f"] + x @ U["f"] + V["f"] * c + b["f"])
        c_tilde = np.tanh(x @ U["c"] + h_in @ W["c"] + b["c"])
        c_new = f * c + i * c_tilde
        o = _sigmoid(h_in @ W["o"] + x @ U["o"] + V["o"] * c_new + b["o"])
        h_new = o * np.tanh(c_new)
        return h_new, [h_new, c_new]

    def keras_twins(self):
        return [({"units": 5}, keras.layers.LSTMCell(5))]


def test_forget_bias_starts_at_one():
    for cell in (LSTMCell(3), LSTMCell(3, chrono_max_length=None)):  # chrono off: today's initialisation
        cell.build((None, 2))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(cell.bias), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    cell = LSTMCell(3, unit_forget_bias=False)
    cell.build((None, 2))
    assert not np.any(keras.ops.convert_to_numpy(cell.bias))


def test_peephole_weights_only_with_peepholes():
    for peepholes, count in ((False, 3), (True, 6)):
        cell = LSTMCell(3, peepholes=peepholes)
        cell.build((None, 2))
        assert len(cell.weights) == count


# Chrono initialisation (Tallec & Ollivier 2018): b_f = log(u), u ~ U(1, T_max - 1) per unit, b_i = -b_f.
T_MAX = 50


def _built_bias(cell, input_dim=2):
    cell.build((None, input_dim))
    return keras.ops.convert_to_numpy(cell.bias)


@pytest.mark.jax
def test_chrono_forget_biases_are_log_uniform_and_input_biases_their_negation():
    keras.utils.set_random_seed(0)
    b_i, b_f, b_c, b_o = np.split(_built_bias(LSTMCell(1000, chrono_max_length=T_MAX, bias_initializer="ones")), 4)
    assert b_f.min() >= np.log(1.0) and b_f.max() <= np.log(T_MAX - 1) + 1e-6, (b_f.min(), b_f.max())
    # u = exp(b_f) is uniform on [1, T_max - 1]: its quartiles, within ~5 standard errors (0.76) for 1000 draws.
    expected_quartiles = 1.0 + (T_MAX - 2) * np.array([0.25, 0.5, 0.75])
    np.testing.assert_allclose(np.quantile(np.exp(b_f), [0.25, 0.5, 0.75]), expected_quartiles, atol=4.0)
    np.testing.assert_array_equal(b_i, -b_f)
    # The candidate and output biases are bias_initializer's, as without the option.
    np.testing.assert_array_equal(b_c, np.ones(1000))
    np.testing.assert_array_equal(b_o, np.ones(1000))


@pytest.mark.jax
def test_chrono_forgetting_times_span_2_to_t_max():
    # With zero input and zero h_{t-1}, c_t = f * c_{t-1} + i * tanh(b_c) = f * c_{t-1} (b_c = 0): each unit keeps
    # f = sigmoid(b_f) = u / (1 + u) of its memory per step, so it forgets in 1 / (1 - f) = 1 + u in [2, T_max]
    # steps (the odds f / (1 - f) = u lie in [1, T_max - 1]).
    keras.utils.set_random_seed(1)
    units = 200
    cell = LSTMCell(units, chrono_max_length=T_MAX)
    b_f = np.split(_built_bias(cell), 4)[1]
    zeros = np.zeros((1, units), "float32")
    _, (_, c) = cell(np.zeros((1, 2), "float32"), [zeros, np.ones((1, units), "float32")])
    kept = keras.ops.convert_to_numpy(c)[0].astype("float64")
    np.testing.assert_allclose(kept, 1.0 / (1.0 + np.exp(-b_f)), rtol=1e-6)
    odds, time = kept / (1.0 - kept), 1.0 / (1.0 - kept)
    assert odds.min() >= 1.0 - 1e-3 and odds.max() <= T_MAX - 1 + 1e-2, (odds.min(), odds.max())
    assert time.min() >= 2.0 - 1e-3 and time.max() <= T_MAX + 1e-2, (time.min(), time.max())
    # Spread over the range (the default's sigmoid(1) gives every unit 3.7 steps): 200 draws leave no quarter empty.
    assert time.min() < 2.0 + T_MAX / 4 and time.max() > T_MAX - T_MAX / 4, (time.min(), time.max())


@pytest.mark.jax
def test_chrono_draws_are_reproducible_with_a_seed():
    def draw(seed):
        keras.utils.set_random_seed(seed)
        return _built_bias(LSTMCell(8, chrono_max_length=T_MAX)), _built_bias(LSTMCell(8, chrono_max_length=T_MAX))

    first, second = draw(3)
    for again, expected in zip(draw(3), (first, second)):
        np.testing.assert_array_equal(again, expected)
    assert not np.allclose(draw(4)[0], first), "another seed draws the same biases"
    assert not np.allclose(first, second), "two cells of one model draw the same biases"


@pytest.mark.jax
def test_chrono_option_survives_config_and_keras_file(tmp_path):
    cell = LSTMCell(4, chrono_max_length=T_MAX)
    serialization.assert_config_round_trip(cell)
    assert cell.get_config()["chrono_max_length"] == T_MAX
    assert LSTMCell.from_config(cell.get_config()).chrono_max_length == T_MAX
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.RNN(cell)])
    x = np.random.default_rng(0).normal(size=(3, 5, 2)).astype("float32")
    loaded = serialization.assert_keras_file_round_trip(model, x, str(tmp_path / "chrono.keras"))
    assert loaded.layers[0].cell.chrono_max_length == T_MAX
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.layers[0].cell.bias), keras.ops.convert_to_numpy(cell.bias)
    )


@pytest.mark.jax
@pytest.mark.parametrize("value", [1, 0, -5, 2.5, 10.0, True, "10"])
def test_chrono_max_length_must_be_an_int_of_at_least_2(value):
    with pytest.raises(ValueError, match=rf"chrono_max_length must be an int >= 2 or None \(off\), got {value!r}"):
        LSTMCell(4, chrono_max_length=value)


@pytest.mark.jax
def test_chrono_needs_biases():
    with pytest.raises(ValueError, match=r"chrono_max_length=10 sets gate biases, but LSTMCell has use_bias=False"):
        LSTMCell(4, chrono_max_length=10, use_bias=False)
    assert LSTMCell(4, chrono_max_length=np.int64(2)).chrono_max_length == 2  # the smallest T_max: b_f = log 1 = 0
