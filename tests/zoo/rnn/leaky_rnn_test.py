import keras

from tests.helpers.sequence_layer_contract import SequenceLayerContract
from zoo.rnn import LeakyRNN


class TestLeakyRNN(SequenceLayerContract):
    layer_class = LeakyRNN
    config = {"units": 5, "alpha": 0.2, "trainable_alpha": True}
    weight_ranges = {"alpha": (0.05, 1.0)}

    def expected_weights(self):
        return {"kernel": (3, 5), "recurrent_kernel": (5, 5), "bias": (5,), "alpha": (5,)}

    def keras_twins(self):
        return [({"units": 5, "alpha": 1.0}, lambda **kw: keras.layers.SimpleRNN(5, **kw))]
