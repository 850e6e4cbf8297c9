import keras
import pytest

from tests.helpers.sequence_layer_contract import SequenceLayerContract
from zoo.rnn import GRU


class TestGRU(SequenceLayerContract):
    layer_class = GRU
    config = {"units": 5}

    def expected_weights(self):
        return {"kernel": (3, 15), "recurrent_kernel": (5, 15), "bias": (2, 15)}

    def keras_twins(self):
        return [
            ({"units": 5}, lambda **kw: keras.layers.GRU(5, **kw)),
            ({"units": 5, "reset_after": False}, lambda **kw: keras.layers.GRU(5, reset_after=False, **kw)),
        ]


def test_is_keras_gru_loop():
    layer = GRU(4)
    assert isinstance(layer, keras.layers.GRU) and layer.use_cudnn == "auto"
    assert type(layer).inner_loop is keras.layers.GRU.inner_loop


def test_reset_before_never_takes_the_cudnn_path():
    assert GRU(4, reset_after=False).use_cudnn is False
    with pytest.raises(ValueError, match=r"use_cudnn=True is not possible .*reset_after=True"):
        GRU(4, reset_after=False, use_cudnn=True)
