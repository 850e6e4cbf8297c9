import keras

from tests.helpers.sequence_layer_contract import SequenceLayerContract
from zoo.rnn import JordanRNN


class TestJordanRNN(SequenceLayerContract):
    layer_class = JordanRNN
    config = {"units": 5, "output_units": 2, "output_activation": "sigmoid"}

    def expected_weights(self):
        return {"kernel": (3, 5), "recurrent_kernel": (2, 5), "bias": (5,), "output_kernel": (5, 2), "output_bias": (2,)}

    def keras_twins(self):
        # V = I, c = 0, linear output: the Elman recurrence.
        return [({"units": 5, "output_initializer": "identity"}, lambda **kw: keras.layers.SimpleRNN(5, **kw))]
