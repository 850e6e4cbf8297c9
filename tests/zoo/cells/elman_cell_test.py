import keras
import numpy as np

from tests.helpers.cell_contract import CellContract
from zoo.cells import ElmanCell


class TestElmanCell(CellContract):
    cell_class = ElmanCell
    configs = ({"units": 5}, {"units": 5, "activation": "relu", "use_bias": False})

    def expected_weights(self):
        return {"kernel": (3, 5), "recurrent_kernel": (5, 5), "bias": (5,)}

    def numpy_step(self, config, w, x, states, recurrent_mask=1.0):
        # a_t = b + W s_{t-1} + U x_t ; s_t = f(a_t)
        f = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0)}[config.get("activation", "tanh")]
        a = w.get("bias", 0.0) + (recurrent_mask * states[0]) @ w["recurrent_kernel"] + x @ w["kernel"]
        s = f(a)
        return s, [s]

    def keras_twins(self):
        return [
            (self.configs[0], keras.layers.SimpleRNNCell(5)),
            (self.configs[1], keras.layers.SimpleRNNCell(5, activation="relu", use_bias=False)),
        ]


def test_dropout_mask_is_the_same_at_every_step():
    # With W = 0, U = I, b = 0 and a linear activation, s_t = mask * x_t; a constant input then shows the mask.
    cell = ElmanCell(
        4,
        activation="linear",
        dropout=0.5,
        kernel_initializer="identity",
        recurrent_initializer="zeros",
        seed=3,
    )
    layer = keras.layers.RNN(cell, return_sequences=True)
    y = keras.ops.convert_to_numpy(layer(np.ones((16, 7, 4), "float32"), training=True))
    assert np.any(y == 0.0) and np.any(y != 0.0), "dropout did not act"
    np.testing.assert_array_equal(y, np.repeat(y[:, :1], 7, axis=1))
    # A second batch draws a new mask.
    y2 = keras.ops.convert_to_numpy(layer(np.ones((16, 7, 4), "float32"), training=True))
    assert not np.array_equal(y, y2)
