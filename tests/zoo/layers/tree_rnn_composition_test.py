import numpy as np
import pytest

from tests.helpers.tree_composition_contract import TreeCompositionContract
from zoo.layers.tree_rnn_composition import TreeRNNComposition

UNITS = 4


def numpy_tree_rnn(config, weights, x, children_states, mask):
    """Socher et al. 2011: h = tanh([h_1; ...; h_K] W + b) at a node with a child, h = x at a leaf; node by node."""
    (children_h,) = children_states
    activation = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}[config.get("activation", "tanh")]
    h = np.zeros((len(x), children_h.shape[-1]))
    for n in range(len(x)):
        if not mask[n].any():
            h[n] = x[n]
            continue
        concatenated = np.concatenate([children_h[n, k] if mask[n, k] else np.zeros(children_h.shape[-1])
                                       for k in range(children_h.shape[1])])
        h[n] = activation(concatenated @ weights["recurrent_kernel"] + weights["bias"])
    return [h]


class TestTreeRNNComposition(TreeCompositionContract):
    layer_class = TreeRNNComposition
    configs = ({"units": UNITS}, {"units": UNITS, "activation": "relu"})
    input_dim = UNITS  # a leaf's word vector is its state
    arity = 2

    def expected_weights(self, config):
        return {"recurrent_kernel": (self.arity * UNITS, UNITS), "bias": (UNITS,)}

    def numpy_compose(self, config, weights, x, children_states, mask):
        return numpy_tree_rnn(config, weights, x, children_states, mask)

    @pytest.mark.jax
    def test_a_leaf_is_its_word_vector(self):
        layer = self.make()
        x, children, mask = self.data()
        (h,) = self.call(layer, x, children, mask)
        np.testing.assert_array_equal(h[~mask.any(axis=1)], x[~mask.any(axis=1)])
        # Three child slots: the weights grow with K.
        wide = TreeRNNComposition(UNITS)
        wide.build((None, UNITS), [(None, 3, UNITS)])
        assert tuple(wide.recurrent_kernel.shape) == (3 * UNITS, UNITS)

    @pytest.mark.jax
    def test_inputs_must_be_word_vectors_of_units(self):
        with pytest.raises(ValueError, match=r"inputs must have units=4 features, got input_dim=3"):
            TreeRNNComposition(UNITS).build((None, 3), [(None, 2, UNITS)])
        with pytest.raises(ValueError, match=r"activation must be a Keras activation .* got 'tanhh'"):
            TreeRNNComposition(UNITS, activation="tanhh")
