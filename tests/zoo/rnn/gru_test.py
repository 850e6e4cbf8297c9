import keras
import numpy as np
import pytest

from tests.helpers import fused_loop
from tests.helpers.fused_loop import fused_at_every_size  # noqa: F401 (a fixture)
from tests.helpers.sequence_layer_contract import SequenceLayerContract
from zoo.rnn import GRU


@pytest.mark.usefixtures("fused_at_every_size")
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


def test_is_keras_gru_with_its_cudnn_dispatch():
    # A keras.layers.GRU (Bidirectional, use_cudnn and the cuDNN path on a GPU work as for Keras's own).
    layer = GRU(4)
    assert isinstance(layer, keras.layers.GRU) and layer.use_cudnn == "auto"


class TestGRUFusedLoop(fused_loop.FusedLoopContract):
    layer_class = GRU
    keras_class = keras.layers.GRU
    state_count = 1
    other_loop_configs = {"reset_before": {"reset_after": False}}


def test_reset_before_never_takes_the_cudnn_path():
    assert GRU(4, reset_after=False).use_cudnn is False
    with pytest.raises(ValueError, match=r"use_cudnn=True is not possible .*reset_after=True"):
        GRU(4, reset_after=False, use_cudnn=True)


@pytest.mark.jax
def test_passes_chrono_initialisation_to_its_cell():
    layer = GRU(4, chrono_max_length=30)
    assert layer.cell.chrono_max_length == 30 and layer.get_config()["chrono_max_length"] == 30
    clone = GRU.from_config(layer.get_config())
    assert clone.cell.chrono_max_length == 30 and clone.get_config() == layer.get_config()
    layer.build((None, None, 2))
    gate_bias = keras.ops.convert_to_numpy(layer.cell.bias).reshape(-1)[:4]  # b_z
    assert np.all((gate_bias >= 0.0) & (gate_bias <= np.log(29) + 1e-6)) and np.ptp(gate_bias) > 0
    with pytest.raises(ValueError, match=r"chrono_max_length must be an int >= 2 or None \(off\), got 1"):
        GRU(4, chrono_max_length=1)
