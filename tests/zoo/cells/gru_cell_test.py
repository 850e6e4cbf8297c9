import keras
import numpy as np

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
