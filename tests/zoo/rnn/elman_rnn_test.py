import keras

from tests.helpers.sequence_layer_contract import SequenceLayerContract
from zoo.rnn import ElmanRNN


class TestElmanRNN(SequenceLayerContract):
    layer_class = ElmanRNN
    config = {"units": 5}

    def expected_weights(self):
        return {"kernel": (3, 5), "recurrent_kernel": (5, 5), "bias": (5,)}

    def keras_twins(self):
        return [({"units": 5}, lambda **kw: keras.layers.SimpleRNN(5, **kw))]


def test_units_property():
    assert ElmanRNN(7).units == 7


def test_recurrent_base_needs_a_cell_class():
    import pytest

    from zoo.rnn import Recurrent

    with pytest.raises(ValueError, match=r"Recurrent is a base class: subclass it with `cell_class"):
        Recurrent(4)
