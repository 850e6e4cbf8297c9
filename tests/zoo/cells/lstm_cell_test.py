import keras
import numpy as np

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
    cell = LSTMCell(3)
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
