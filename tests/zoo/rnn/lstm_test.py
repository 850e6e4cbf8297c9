import keras
import numpy as np
import pytest

from tests.helpers import fused_loop
from tests.helpers.fused_loop import fused_at_every_size  # noqa: F401 (a fixture)
from tests.helpers.sequence_layer_contract import SequenceLayerContract
from tests.zoo.cells.lstm_cell_test import PEEPHOLE_LSTM_WEIGHTS
from zoo.rnn import LSTM


class TestLSTM(SequenceLayerContract):
    layer_class = LSTM
    config = {"units": 5, "peepholes": True}

    def expected_weights(self):
        return PEEPHOLE_LSTM_WEIGHTS

    def keras_twins(self):
        return [({"units": 5}, lambda **kw: keras.layers.LSTM(5, **kw))]


@pytest.mark.usefixtures("fused_at_every_size")
class TestLSTMWithoutPeepholes(SequenceLayerContract):
    # The whole contract (stateful, SavedModel, XLA, Bidirectional, ...) through the fused loop as well.
    layer_class = LSTM
    config = {"units": 5}

    def expected_weights(self):
        return {"kernel": (3, 20), "recurrent_kernel": (5, 20), "bias": (20,)}

    def keras_twins(self):
        return [({"units": 5}, lambda **kw: keras.layers.LSTM(5, **kw))]


def test_is_keras_lstm_with_its_cudnn_dispatch():
    # A keras.layers.LSTM (Bidirectional, use_cudnn and the cuDNN path on a GPU work as for Keras's own).
    layer = LSTM(4)
    assert isinstance(layer, keras.layers.LSTM)
    assert layer.use_cudnn == "auto"


class TestLSTMFusedLoop(fused_loop.FusedLoopContract):
    layer_class = LSTM
    keras_class = keras.layers.LSTM
    state_count = 2
    other_loop_configs = {"peepholes": {"peepholes": True}}


def test_peepholes_never_take_the_cudnn_path():
    assert LSTM(4, peepholes=True).use_cudnn is False
    with pytest.raises(ValueError, match=r"use_cudnn=True is not possible .*no peephole connections"):
        LSTM(4, peepholes=True, use_cudnn=True)
    with pytest.raises(ValueError, match=r"use_cudnn must be one of 'auto', True, False, got 'yes'"):
        LSTM(4, use_cudnn="yes")


@pytest.mark.jax
def test_passes_chrono_initialisation_to_its_cell():
    layer = LSTM(4, chrono_max_length=30)
    assert layer.cell.chrono_max_length == 30 and layer.get_config()["chrono_max_length"] == 30
    clone = LSTM.from_config(layer.get_config())
    assert clone.cell.chrono_max_length == 30 and clone.get_config() == layer.get_config()
    layer.build((None, None, 2))
    gate_bias = keras.ops.convert_to_numpy(layer.cell.bias).reshape(-1)[4:8]  # b_f
    assert np.all((gate_bias >= 0.0) & (gate_bias <= np.log(29) + 1e-6)) and np.ptp(gate_bias) > 0
    with pytest.raises(ValueError, match=r"chrono_max_length must be an int >= 2 or None \(off\), got 1"):
        LSTM(4, chrono_max_length=1)
