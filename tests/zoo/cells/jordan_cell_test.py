import keras
import numpy as np

from tests.helpers.cell_contract import CellContract
from zoo.cells import JordanCell


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class TestJordanCell(CellContract):
    cell_class = JordanCell
    configs = (
        {"units": 5, "output_units": 2},
        {"units": 5, "output_units": 2, "output_activation": "sigmoid"},
    )

    def expected_weights(self):
        return {
            "kernel": (3, 5),
            "recurrent_kernel": (2, 5),
            "bias": (5,),
            "output_kernel": (5, 2),
            "output_bias": (2,),
        }

    def numpy_step(self, config, w, x, states, recurrent_mask=1.0):
        # a_t = b + W o_{t-1} + U x_t ; s_t = tanh(a_t) ; o_t = g(c + V s_t)
        g = {None: lambda a: a, "sigmoid": _sigmoid}[config.get("output_activation")]
        s = np.tanh(w["bias"] + (recurrent_mask * states[0]) @ w["recurrent_kernel"] + x @ w["kernel"])
        o = g(w["output_bias"] + s @ w["output_kernel"])
        return o, [o]

    def keras_twins(self):
        # With V = I and c = 0 the output is the hidden state: a Jordan cell is then an Elman cell.
        return [({"units": 5, "output_initializer": "identity"}, keras.layers.SimpleRNNCell(5))]


def test_output_units_default_to_units():
    cell = JordanCell(4)
    assert cell.output_units == 4 and cell.state_size == 4 and cell.output_size == 4


def test_bad_output_arguments():
    import pytest

    with pytest.raises(ValueError, match=r"output_units must be a positive int, got 0"):
        JordanCell(4, output_units=0)
    with pytest.raises(ValueError, match=r"output_activation must be a Keras activation .* got 'softmaxx'"):
        JordanCell(4, output_activation="softmaxx")
