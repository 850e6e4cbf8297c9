import keras
import pytest

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


def test_is_keras_lstm_loop_without_peepholes():
    # Keras's own LSTM loop (and its cuDNN dispatch) runs our cell.
    layer = LSTM(4)
    assert isinstance(layer, keras.layers.LSTM)
    assert layer.use_cudnn == "auto"
    assert type(layer).inner_loop is keras.layers.LSTM.inner_loop


def test_peepholes_never_take_the_cudnn_path():
    assert LSTM(4, peepholes=True).use_cudnn is False
    with pytest.raises(ValueError, match=r"use_cudnn=True is not possible .*no peephole connections"):
        LSTM(4, peepholes=True, use_cudnn=True)
    with pytest.raises(ValueError, match=r"use_cudnn must be one of 'auto', True, False, got 'yes'"):
        LSTM(4, use_cudnn="yes")
