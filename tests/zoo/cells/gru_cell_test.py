import keras
import numpy as np
import pytest

from tests.helpers import serialization
from tests.helpers.cell_contract import CellContract
from zoo.cells import GRUCell


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class TestGRUCell(CellContract):
    cell_class = GRUCell
    configs = ({"units": 5}, {"units": 5, "reset_after": False})

    def expected_weights(self):
        return {"kernel": (3, 15), "recurrent_kernel": (5, 15), "bias": (2, 15)}

    def numpy_step(self, config, w, x, states, recurrent_mask=1.0):
        # z_t, r_t gates; candidate with the reset gate before (Cho) or after (cuDNN) the product W_h h_{t-1}.
        h = states[0]
        h_in = recurrent_mask * h  # recurrent dropout acts in the products, not in the interpolation
        U = dict(zip("zrh", np.split(w["kernel"], 3, axis=1)))
        W = dict(zip("zrh", np.split(w["recurrent_kernel"], 3, axis=1)))
        reset_after = config.get("reset_after", True)
        b = dict(zip("zrh", np.split(w["bias"][0] if reset_after else w["bias"], 3)))
        b_rec = dict(zip("zrh", np.split(w["bias"][1], 3))) if reset_after else dict.fromkeys("zrh", 0.0)
        z = _sigmoid(h_in @ W["z"] + x @ U["z"] + b["z"] + b_rec["z"])
        r = _sigmoid(h_in @ W["r"] + x @ U["r"] + b["r"] + b_rec["r"])
        if reset_after:
            candidate = np.tanh(x @ U["h"] + b["h"] + r * (h_in @ W["h"] + b_rec["h"]))
        else:
            candidate = np.tanh(x @ U["h"] + (r * h_in) @ W["h"] + b["h"])
        h_new = z * h + (1.0 - z) * candidate
        return h_new, [h_new]

    def keras_twins(self):
        return [
            ({"units": 5}, keras.layers.GRUCell(5)),
            ({"units": 5, "reset_after": False}, keras.layers.GRUCell(5, reset_after=False)),
        ]


# Chrono initialisation (Tallec & Ollivier 2018): the update gate z_t keeps h_{t-1}, so b_z = +log(u),
# u ~ U(1, T_max - 1) per unit (and b'_z = 0 with reset_after).
T_MAX = 50


def _built_bias(cell, input_dim=2):
    cell.build((None, input_dim))
    return keras.ops.convert_to_numpy(cell.bias)


@pytest.mark.jax
def test_biases_start_at_zero_without_chrono():
    for cell in (GRUCell(3), GRUCell(3, chrono_max_length=None)):  # chrono off: today's initialisation
        np.testing.assert_array_equal(_built_bias(cell), np.zeros((2, 9)))


@pytest.mark.jax
@pytest.mark.parametrize("reset_after", [True, False])
def test_chrono_update_biases_are_log_uniform(reset_after):
    keras.utils.set_random_seed(0)
    units = 1000
    bias = _built_bias(GRUCell(units, reset_after=reset_after, chrono_max_length=T_MAX, bias_initializer="ones"))
    b_z, b_r, b_h = np.split(bias[0] if reset_after else bias, 3)
    assert b_z.min() >= np.log(1.0) and b_z.max() <= np.log(T_MAX - 1) + 1e-6, (b_z.min(), b_z.max())
    # u = exp(b_z) is uniform on [1, T_max - 1]: its quartiles, within ~5 standard errors (0.76) for 1000 draws.
    expected_quartiles = 1.0 + (T_MAX - 2) * np.array([0.25, 0.5, 0.75])
    np.testing.assert_allclose(np.quantile(np.exp(b_z), [0.25, 0.5, 0.75]), expected_quartiles, atol=4.0)
    # The reset and candidate biases are bias_initializer's, as without the option.
    np.testing.assert_array_equal(np.concatenate([b_r, b_h]), np.ones(2 * units))
    if reset_after:
        # The recurrent bias row: b'_z = 0, so that the gate's whole bias b_z + b'_z is log(u); b'_r, b'_h as before.
        recurrent_z, recurrent_rh = np.split(bias[1], [units])
        np.testing.assert_array_equal(recurrent_z, np.zeros(units))
        np.testing.assert_array_equal(recurrent_rh, np.ones(2 * units))


@pytest.mark.jax
@pytest.mark.parametrize("reset_after", [True, False])
def test_chrono_forgetting_times_span_2_to_t_max(reset_after):
    # With U = W = 0 the gates see neither input nor state (as at zero input and state): z = sigmoid(b_z + b'_z) and
    # the candidate is tanh(b_h) = 0, so h_t = z * h_{t-1}. Each unit keeps z = u / (1 + u) of its state per step
    # and forgets in 1 / (1 - z) = 1 + u in [2, T_max] steps (the odds z / (1 - z) = u lie in [1, T_max - 1]).
    keras.utils.set_random_seed(1)
    units = 200
    cell = GRUCell(units, reset_after=reset_after, chrono_max_length=T_MAX)
    bias = _built_bias(cell)
    cell.kernel.assign(np.zeros(cell.kernel.shape, "float32"))
    cell.recurrent_kernel.assign(np.zeros(cell.recurrent_kernel.shape, "float32"))
    h, _ = cell(np.zeros((1, 2), "float32"), [np.ones((1, units), "float32")])
    kept = keras.ops.convert_to_numpy(h)[0].astype("float64")
    b_z = bias[0, :units] + bias[1, :units] if reset_after else bias[:units]
    np.testing.assert_allclose(kept, 1.0 / (1.0 + np.exp(-b_z)), rtol=1e-6)
    odds, time = kept / (1.0 - kept), 1.0 / (1.0 - kept)
    assert odds.min() >= 1.0 - 1e-3 and odds.max() <= T_MAX - 1 + 1e-2, (odds.min(), odds.max())
    assert time.min() >= 2.0 - 1e-3 and time.max() <= T_MAX + 1e-2, (time.min(), time.max())
    # Spread over the range (the default's sigmoid(0) gives every unit 2 steps): 200 draws leave no quarter empty.
    assert time.min() < 2.0 + T_MAX / 4 and time.max() > T_MAX - T_MAX / 4, (time.min(), time.max())


@pytest.mark.jax
def test_chrono_draws_are_reproducible_with_a_seed():
    def draw(seed):
        keras.utils.set_random_seed(seed)
        return _built_bias(GRUCell(8, chrono_max_length=T_MAX)), _built_bias(GRUCell(8, chrono_max_length=T_MAX))

    first, second = draw(3)
    for again, expected in zip(draw(3), (first, second)):
        np.testing.assert_array_equal(again, expected)
    assert not np.allclose(draw(4)[0], first), "another seed draws the same biases"
    assert not np.allclose(first, second), "two cells of one model draw the same biases"


@pytest.mark.jax
def test_chrono_option_survives_config_and_keras_file(tmp_path):
    cell = GRUCell(4, chrono_max_length=T_MAX)
    serialization.assert_config_round_trip(cell)
    assert cell.get_config()["chrono_max_length"] == T_MAX
    assert GRUCell.from_config(cell.get_config()).chrono_max_length == T_MAX
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
        GRUCell(4, chrono_max_length=value)


@pytest.mark.jax
def test_chrono_needs_biases():
    with pytest.raises(ValueError, match=r"chrono_max_length=10 sets gate biases, but GRUCell has use_bias=False"):
        GRUCell(4, chrono_max_length=10, use_bias=False)
